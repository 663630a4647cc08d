"""Arguments shared by `ftctl serve` and `ftctl chat`, and MODEL|JOB → what to load.

A JOB id (a number) is looked up in ftd: a training job stands for its run dir (its `final/`);
anything else goes to `ftlab.engine.infer.source.resolve_source` (embedded name, local folder,
hub id, run dir of `ftctl run`, adapter folder).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ftlab.errors import UserError


def add_model_arguments(parser) -> None:
    parser.add_argument("model", metavar="MODEL|JOB",
                        help="embedded model name, Hugging Face folder or hub id, a run dir of `ftctl run`, "
                             "an adapter folder, or a job id (its trained output)")
    parser.add_argument("--adapter", metavar="A", help="LoRA adapter folder (or a run dir: its final/) to apply")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA, fp32 on CPU), bf16, fp16, fp32")


def job_info(spec: str) -> dict | None:
    """The daemon's record of job `spec` (a number that is not a folder), else None."""
    if not spec.isdigit() or Path(spec).exists():
        return None
    from ftlab.daemon import client
    from ftlab.daemon import protocol as P

    try:
        with client.connect() as ftd:
            return ftd.request(P.SHOW, {"id": int(spec)})
    except client.DaemonUnavailable:
        raise UserError(f"{spec} looks like a job id, but ftd is not running here "
                        f"(start it with `ftd`, or give a model name or folder)") from None


def model_source(args, log=None):
    """The `ModelSource` for the command line's MODEL|JOB and --adapter."""
    from ftlab.engine.infer.source import resolve_source

    log = log or (lambda message: print(message, file=sys.stderr))
    spec = args.model
    job = job_info(spec)
    if job is not None:
        if job.get("stage") == "serve":
            raise UserError(f"job {spec} is a serve job: chat with it (`ftctl chat {spec}`) or use its API")
        spec = job["job_dir"]  # a training job: its run dir holds final/
    return resolve_source(spec, adapter=args.adapter, log=log,
                          served_name=getattr(args, "served_model_name", None))
