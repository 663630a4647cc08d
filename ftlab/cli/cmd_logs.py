"""Print a job's log; -f follows it until the job ends (exit 0 only if it succeeded).

    ftctl logs 12            ftctl logs 12 -f            ftctl logs 12 --tail 4000
"""

from __future__ import annotations

import sys


def add_arguments(parser) -> None:
    parser.add_argument("job", type=int, help="job id")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing until the job ends")
    parser.add_argument("--tail", type=int, default=None, metavar="BYTES", help="only the last BYTES of the log")
    parser.add_argument("--json", action="store_true", help='print {"id", "size", "data"} instead of the text')


def run(args) -> int:
    from ftlab.daemon import client, protocol

    with client.connect() as ftd:
        if args.follow and not args.json:
            job = client.wait(ftd, args.job, out=sys.stdout)
            return 0 if job["state"] == "succeeded" else 1
        offset = -args.tail if args.tail else 0
        parts = []
        while True:
            chunk = ftd.request(protocol.LOGS, {"id": args.job, "offset": offset})
            parts.append(chunk["data"])
            if not args.json:
                sys.stdout.write(chunk["data"])
            offset = chunk["end"]
            if chunk["end"] >= chunk["size"]:
                break
    if args.json:
        from .jobs_view import print_json

        print_json({"id": args.job, "size": chunk["size"], "state": chunk["state"], "data": "".join(parts)})
    return 0
