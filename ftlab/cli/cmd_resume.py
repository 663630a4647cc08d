"""Queue a failed, cancelled or lost job again, in the same job folder, resuming from its last
checkpoint when it saved one.

    ftctl resume 12 [--json]
"""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("job", type=int, help="job id")
    parser.add_argument("--json", action="store_true", help="print the job record as JSON")


def run(args) -> int:
    from ftlab.daemon import client, protocol

    with client.connect() as ftd:
        job = ftd.request(protocol.RESUME, {"id": args.job})["job"]
    if args.json:
        from .jobs_view import print_json

        print_json(job)
    else:
        print(f"job {job['id']}: {job['state']}")
    return 0
