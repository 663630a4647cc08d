"""sd_notify(3) by hand: one datagram to $NOTIFY_SOCKET (READY=1, STATUS=…, WATCHDOG=1, STOPPING=1).

Twelve lines instead of a dependency; a no-op when ftd was not started by systemd (tests, CI,
a person in a terminal). Abstract socket names ("@…") are supported as systemd uses them.
"""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), address)
        return True
    except OSError:
        return False


def watchdog_seconds() -> float | None:
    """The watchdog interval systemd asked for (WatchdogSec=), if it is meant for this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1e6
