"""Queue a profile as a job on ftd; prints its id. --wait follows its log and exits 0 only on success.

    ftctl submit profiles/demo_lora_sft.yaml --set train.max_steps=20 --gpus 1 --name demo --wait

The profile is validated here first (every problem at once, exit 2) and its relative paths are
made absolute against the current folder, then ftd validates it again and queues it; a request
that can never be met (more GPUs than the machine has) is refused with the reason.
"""

from __future__ import annotations

import sys


def add_arguments(parser) -> None:
    parser.add_argument("profile", help="YAML profile (ftlab or LlamaFactory format)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key, e.g. --set train.max_steps=10 (repeatable)")
    parser.add_argument("--gpus", type=int, default=None,
                        help="GPUs for the job (default 1 when the machine has any; 0 = the CPU)")
    parser.add_argument("--min-vram", type=float, default=None, metavar="GIB",
                        help="free VRAM each granted GPU must have")
    parser.add_argument("--priority", type=int, default=0, help="higher runs first (FIFO within a priority)")
    parser.add_argument("--name", help="job name (default: the profile's file name)")
    parser.add_argument("--wait", action="store_true", help="follow the log; exit 0 only if the job succeeds")
    parser.add_argument("--json", action="store_true", help='print {"id": N} (with --wait: the final job)')


def run(args) -> int:
    from ftlab.daemon import client

    with client.connect() as ftd:
        job_id = client.submit_file(ftd, args.profile, args.sets, gpus=args.gpus, priority=args.priority,
                                    name=args.name, min_vram_gib=args.min_vram)
        if not args.wait:
            if args.json:
                from .jobs_view import print_json

                print_json({"id": job_id})
            else:
                print(job_id)
            return 0
        if not args.json:
            print(f"job {job_id} submitted; following its log (Ctrl-C stops following, not the job)",
                  file=sys.stderr)
        job = client.wait(ftd, job_id, out=None if args.json else sys.stdout)
    if args.json:
        from .jobs_view import print_json

        print_json({"id": job_id, "state": job["state"], "job": job})
    else:
        print(f"job {job_id} {job['state']}" + (f": {job['error']}" if job.get("error") else ""), file=sys.stderr)
    return 0 if job["state"] == "succeeded" else 1
