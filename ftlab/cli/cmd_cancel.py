"""Cancel a job: a queued job leaves the queue; a running one gets SIGTERM (a warm stop that
finishes the step and writes exit.json), then SIGKILL after ftd's grace period.

    ftctl cancel 12 [--json]
"""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("job", type=int, help="job id")
    parser.add_argument("--json", action="store_true", help="print the job record as JSON")


def run(args) -> int:
    from ftlab.daemon import client, protocol

    with client.connect() as ftd:
        reply = ftd.request(protocol.CANCEL, {"id": args.job})
    job = reply["job"]
    if args.json:
        from .jobs_view import print_json

        print_json(job)
    else:
        print(f"job {job['id']}: " + ("cancelled" if job["state"] == "cancelled" else "stopping (SIGTERM sent)"))
    return 0
