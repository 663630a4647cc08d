"""ftd speaks sd_notify (READY, STATUS, WATCHDOG, STOPPING) to a real $NOTIFY_SOCKET, and the
unit files keep the settings that matter (Type=notify, KillMode=process, watchdog, no hidden GPUs)."""

from __future__ import annotations

import configparser
import shutil
import socket
import subprocess
import time

import pytest

REPO_SYSTEMD = __import__("pathlib").Path(__file__).resolve().parents[2] / "systemd"


def test_ready_status_watchdog_stopping(short_dir, ftlab_home):
    path = short_dir / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(0.5)
        from ftlab.daemon import client

        daemon = client.start_daemon(state_dir=short_dir / "state", endpoint=f"ipc://{short_dir}/ftd.sock",
                                     env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"})
        seen: list[str] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and sum("WATCHDOG=1" in s for s in seen) < 2:
            try:
                seen.append(sock.recv(4096).decode())
            except TimeoutError:
                pass
        daemon.stop()
        try:
            while True:
                seen.append(sock.recv(4096).decode())
        except TimeoutError:
            pass
    text = "\n".join(seen)
    assert "READY=1" in text and "STATUS=" in text and f"MAINPID={daemon.process.pid}" in text
    assert text.count("WATCHDOG=1") >= 2  # every WATCHDOG_USEC/2 from the event loop
    assert "STOPPING=1" in text


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(REPO_SYSTEMD / name)
    return parser


@pytest.mark.parametrize("name", ["ftd.service", "ftd.user.service"])
def test_unit_files(name):
    service = _unit(name)["Service"]
    assert service["Type"] == "notify" and service["KillMode"] == "process"
    assert service["Restart"] == "on-failure" and int(service["WatchdogSec"]) > 0
    assert "--foreground" in service["ExecStart"]
    assert "PrivateDevices" not in service and "DevicePolicy" not in service  # GPUs stay visible
    if shutil.which("systemd-analyze") and name == "ftd.service":
        result = subprocess.run(["systemd-analyze", "verify", str(REPO_SYSTEMD / name)], capture_output=True,
                                text=True, check=False)
        problems = [line for line in result.stderr.splitlines() if "is not executable" not in line]
        assert not problems, problems
