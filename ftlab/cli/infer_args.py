"""Arguments shared by `ftctl serve` and `ftctl chat`, and MODEL|JOB → what to load.

A JOB id is asked of the daemon (its client, when ftd is installed) for the job's run dir;
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


def job_run_dir(spec: str) -> Path | None:
    """The run dir of job `spec` when the daemon knows it, else None."""
    try:
        from ftlab.daemon import client as daemon_client  # noqa: F401  (present once ftd's client lands)
    except ImportError:
        return None
    finder = getattr(daemon_client, "job_run_dir", None)
    if finder is None:
        return None
    try:
        found = finder(spec)
    except UserError:
        raise
    except Exception:  # no daemon running, or not a job id: treat MODEL as a model name
        return None
    return Path(found) if found else None


def model_source(args, log=None):
    """The `ModelSource` for the command line's MODEL|JOB and --adapter."""
    from ftlab.engine.infer.source import resolve_source

    log = log or (lambda message: print(message, file=sys.stderr))
    spec = args.model
    if not Path(spec).expanduser().exists():
        run_dir = job_run_dir(spec)
        if run_dir is not None:
            spec = str(run_dir)
    return resolve_source(spec, adapter=args.adapter, log=log,
                          served_name=getattr(args, "served_model_name", None))
