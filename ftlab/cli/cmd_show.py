"""Show one job: state, devices, queue position, last metrics, error, job folder.

    ftctl show 12 [--json]
"""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("job", type=int, help="job id")
    parser.add_argument("--json", action="store_true", help="print the job record (with its profile) as JSON")


def run(args) -> int:
    from ftlab.daemon import client, protocol

    from .jobs_view import job_detail, print_json

    with client.connect() as ftd:
        job = ftd.request(protocol.SHOW, {"id": args.job})
    if args.json:
        print_json(job)
    else:
        job_detail(job)
    return 0
