"""Check that ftd answers: who it thinks you are, its version, mode and round-trip time.

    ftctl ping [--json]
    ftctl ping --register-key tcp://server:5555   # once, on the server: authorise this user's CURVE
                                                  # key for TCP access (then FTLAB_ENDPOINT=tcp://…)
"""

from __future__ import annotations

import time


def add_arguments(parser) -> None:
    parser.add_argument("--register-key", metavar="TCP_ENDPOINT",
                        help="create (or reuse) your CURVE keypair and authorise it with the local ftd")
    parser.add_argument("--json", action="store_true", help="print the daemon's hello record as JSON")


def _register(ftd, tcp_endpoint: str) -> dict:
    import json
    import os

    import zmq

    from ftlab.daemon import client, protocol
    from ftlab.daemon.auth import write_private

    path = client.curve_file(tcp_endpoint)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        creds = json.loads(path.read_text())
    except (OSError, ValueError):
        public, secret = zmq.curve_keypair()
        creds = {"public": public.decode(), "secret": secret.decode()}
    reply = ftd.request(protocol.REGISTER_KEY, {"public_key": creds["public"]})
    creds.update(server_public=reply["server_public"], session_key=reply["session_key"])
    write_private(path, json.dumps(creds).encode())
    os.chmod(path, 0o600)
    return {"credentials": str(path), "endpoint": tcp_endpoint}


def run(args) -> int:
    from ftlab.daemon import client, protocol

    with client.connect() as ftd:
        start = time.perf_counter()
        ftd.request(protocol.PING)
        rtt_ms = (time.perf_counter() - start) * 1000
        info = ftd.hello()
        info.update(endpoint=ftd.endpoint, rtt_ms=round(rtt_ms, 3))
        if args.register_key:
            info["registered"] = _register(ftd, args.register_key)
    if args.json:
        from .jobs_view import print_json

        print_json(info)
    else:
        role = "admin" if info["admin"] else "user"
        print(f"ftd {info['daemon']} ({info['mode']} mode, pid {info['pid']}) at {info['endpoint']}: "
              f"you are {info['user']} ({role}), round trip {rtt_ms:.2f} ms")
        if args.register_key:
            print(f"CURVE key registered; credentials in {info['registered']['credentials']}; "
                  f"use FTLAB_ENDPOINT={args.register_key}")
    return 0
