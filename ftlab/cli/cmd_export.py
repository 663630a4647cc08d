"""Export a trained run as an adapter folder or a merged model (Hugging Face format).

    ftctl export out/run --out exports/adapter                     # the adapter, as trained
    ftctl export out/run --out exports/merged --merge --dtype bf16  # base + adapter merged
    ftctl export 12 --out exports/merged --merge                    # job 12 of the daemon

The source is a job id, a run dir (its final/ is used), an adapter folder or a model folder.
A QLoRA adapter is merged into the de-quantized base it was trained against.
"""

from __future__ import annotations

import json
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("source", metavar="JOB|RUN_DIR|ADAPTER", help="job id, run dir, adapter or model folder")
    parser.add_argument("--out", required=True, help="new folder to write")
    parser.add_argument("--merge", action="store_true", help="merge the adapter into the base model")
    parser.add_argument("--dtype", choices=("bf16", "fp16", "fp32"), default="bf16",
                        help="dtype of a merged model (default bf16)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")


def _job_dir(job_id: int) -> Path:
    from ftlab.daemon import client, protocol

    with client.connect() as ftd:
        job = ftd.request(protocol.SHOW, {"id": job_id})
    return Path(job["job_dir"])


def run(args) -> int:
    from ftlab.engine.model.export import export

    source = args.source
    if source.isdigit() and not Path(source).exists():
        source = _job_dir(int(source))
    summary = export(source, args.out, merge=args.merge, dtype=args.dtype)
    if args.json:
        print(json.dumps(summary))
    else:
        what = {"adapter": "adapter", "merged": f"merged model ({summary['dtype']})",
                "model": f"model ({summary['dtype']})"}[summary["kind"]]
        note = ", merged into the de-quantized base" if summary["quantized_base"] and summary["kind"] == "merged" else ""
        print(f"exported {what} from {summary['source']} to {summary['out']}{note}")
    return 0
