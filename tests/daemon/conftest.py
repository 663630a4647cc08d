"""Fixtures for ftd tests: a real ftd subprocess on a short Unix-socket path, real SQLite, and a
tiny real CPU job profile (2-layer random llama, identity data)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from ftlab.daemon import client

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def short_dir():
    """A folder under /tmp with a short path (Unix socket paths are limited to ~107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="ftd-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def start_ftd(short_dir, ftlab_home):
    """start(inventory=None, *args) → DaemonProcess; every daemon is stopped at teardown."""
    started: list[client.DaemonProcess] = []

    def start(gpus: int | None = None, *args: str, name: str = "ftd") -> client.DaemonProcess:
        env = {}
        if gpus is not None:
            inventory = short_dir / "inventory.json"
            inventory.write_text(json.dumps([{"index": i, "name": f"test-gpu-{i}", "total_mib": 81920}
                                             for i in range(gpus)]))
            env["FTLAB_TEST_INVENTORY"] = str(inventory)
        daemon = client.start_daemon(state_dir=short_dir / "state", endpoint=f"ipc://{short_dir}/{name}.sock",
                                     extra_args=list(args), env=env, log_file=short_dir / "ftd.log")
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def write_profile(folder: Path, model: Path, max_steps: int = 2, name: str = "job.yaml") -> Path:
    path = folder / name
    path.write_text(f"""stage: sft
model:
  name_or_path: {model}
method:
  type: lora
data:
  dataset: [identity]
  dataset_dir: {REPO / 'profiles' / 'data'}
  cutoff_len: 64
train:
  max_steps: {max_steps}
  batch_size: 2
  logging_steps: 1
output:
  dir: out/unused
""")
    return path


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def helpers():
    """write_profile and wait_for, for the test modules (tests/ is not a package)."""
    class Helpers:
        pass

    Helpers.write_profile = staticmethod(write_profile)
    Helpers.wait_for = staticmethod(wait_for)
    return Helpers
