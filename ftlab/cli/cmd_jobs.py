"""List your jobs on ftd, newest first; --all lists every user's (admins: root or the admin group).

    ftctl jobs            ftctl jobs --all --json            ftctl jobs --limit 0   # no limit
"""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--all", action="store_true", help="every user's jobs (admins only; others see their own)")
    parser.add_argument("--limit", type=int, default=200, help="newest N jobs (0: all; default 200)")
    parser.add_argument("--json", action="store_true", help="print the job records as JSON")


def run(args) -> int:
    from ftlab.daemon import client, protocol

    from .jobs_view import jobs_table, print_json

    with client.connect() as ftd:
        reply = ftd.request(protocol.JOBS, {"all": args.all, "limit": args.limit})
    if args.json:
        print_json(reply["jobs"])
    else:
        jobs_table(reply["jobs"], show_owner=reply["scope"] == "all")
    return 0
