"""`ftd`: the ftlab daemon — owns the accelerators, queues and runs jobs, tells clients about them.

    ftd --foreground                       # user mode: socket in $XDG_RUNTIME_DIR/ftlab, state in $XDG_STATE_HOME/ftlab
    ftd                                    # same, detached into the background (log: <state>/ftd.log)
    sudo ftd --foreground                  # system mode (as root; systemd/ftd.service): /run/ftlab, /var/lib/ftlab
    ftd --foreground --endpoint ipc:///tmp/f/ftd.sock --endpoint tcp://0.0.0.0:5555 --state-dir /srv/ftlab

Run as root, ftd serves every user of the machine (each sees only their jobs; jobs run as their
submitter); run as a user, it serves that user only. A TCP endpoint is CURVE-encrypted and only
admits registered keys (`ftctl ping --register-key`). Test seam: `FTLAB_TEST_INVENTORY=file.json`
replaces NVML discovery with a fixed GPU list (see `ftlab.daemon.scheduler`).

Nothing here imports torch: ftd starts in well under a second and survives a broken CUDA install.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from ftlab import paths

from .auth import DEFAULT_ADMIN_GROUP


def default_dirs() -> tuple[Path, Path]:
    """(state dir, runtime dir): FTLAB_HOME if set, else system dirs as root, else XDG user dirs."""
    if paths.home() is None and os.geteuid() == 0:
        return paths.SYSTEM_STATE_DIR, paths.SYSTEM_RUNTIME_DIR
    return paths.user_state_dir(), paths.user_runtime_dir()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ftd", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--foreground", action="store_true", help="stay attached to the terminal (systemd, tests)")
    parser.add_argument("--state-dir", type=Path, help="job store and job folders (default: see above)")
    parser.add_argument("--endpoint", action="append", default=[], metavar="E",
                        help="ipc://PATH or tcp://HOST:PORT to listen on (repeatable; default: the socket in the "
                             "runtime dir)")
    parser.add_argument("--admin-group", default=DEFAULT_ADMIN_GROUP,
                        help=f"Unix group whose members see and control every job (default {DEFAULT_ADMIN_GROUP})")
    parser.add_argument("--cpu-slots", type=int, default=1, help="CPU jobs that may run at once (default 1)")
    parser.add_argument("--grace", type=float, default=10.0,
                        help="seconds between SIGTERM and SIGKILL when a job is cancelled (default 10)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def _daemonize(log_file: Path) -> None:
    """Classic double fork: detach from the terminal, keep running in the background."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(fd, 1)
    os.dup2(fd, 2)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .server import Daemon, DaemonAlreadyRunning, DaemonConfig
    from .systemd_notify import watchdog_seconds

    state_dir, runtime_dir = default_dirs()
    state_dir = (args.state_dir or state_dir).resolve()
    endpoints = args.endpoint or [f"ipc://{runtime_dir / 'ftd.sock'}"]
    if not any(e.startswith("ipc://") for e in endpoints):
        endpoints.insert(0, f"ipc://{runtime_dir / 'ftd.sock'}")
    for endpoint in endpoints:
        if endpoint.startswith("ipc://") and len(endpoint) - 6 > 100:
            print(f"ftd: socket path too long for a Unix socket (max ~100 characters): {endpoint}", file=sys.stderr)
            return 2
    if args.cpu_slots < 0:
        print("ftd: --cpu-slots must be 0 or more", file=sys.stderr)
        return 2
    os.umask(0o077)  # the store, its WAL and logs are private; jobs get umask 022 (runner)
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not args.foreground:
        print(f"ftd: starting in the background; log in {state_dir / 'ftd.log'}; endpoint {endpoints[0]}")
        sys.stdout.flush()
        _daemonize(state_dir / "ftd.log")
    logging.basicConfig(level=args.log_level, format="%(asctime)s ftd[%(process)d] %(levelname)s %(message)s")
    config = DaemonConfig(state_dir=state_dir, endpoints=endpoints, admin_group=args.admin_group or None,
                          cpu_slots=args.cpu_slots, grace_s=args.grace, watchdog_s=watchdog_seconds())
    try:
        asyncio.run(Daemon(config).run())
    except KeyboardInterrupt:
        pass
    except DaemonAlreadyRunning as err:
        print(f"ftd: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
