"""Fixtures for ftui tests: a real ftd child process on a short socket path (CPU, one slot), tiny
job profiles, a Pilot helper that waits for a condition, and fixed data for snapshot tests."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def short_dir():
    path = Path(tempfile.mkdtemp(prefix="ftui-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def ftd(short_dir, ftlab_home):
    """start() → a running `ftd --foreground` (DaemonProcess); restart with the same state and socket."""
    from ftlab.daemon import client

    started = []

    def start():
        daemon = client.start_daemon(state_dir=short_dir / "state", endpoint=f"ipc://{short_dir}/ftd.sock",
                                     extra_args=["--grace", "5"], log_file=short_dir / "ftd.log")
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()
    _kill_leftover_jobs(short_dir / "state" / "ftd.db")


def _kill_leftover_jobs(db: Path) -> None:
    """Jobs outlive ftd by design; a test that failed half-way must not leave one training."""
    import signal
    import sqlite3

    if not db.exists():
        return
    with sqlite3.connect(db) as conn:
        pids = [row[0] for row in conn.execute("SELECT pid FROM jobs WHERE state IN ('starting','running') "
                                                "AND pid IS NOT NULL")]
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def write_profile(folder: Path, model: Path, max_steps: int, name: str) -> Path:
    path = folder / name
    path.write_text(f"""stage: sft
model:
  name_or_path: {model}
method:
  type: lora
  lora:
    rank: 4
data:
  dataset: [identity]
  dataset_dir: {REPO / 'profiles' / 'data'}
  cutoff_len: 48
train:
  max_steps: {max_steps}
  batch_size: 2
  logging_steps: 1
output:
  dir: {folder / 'out'}
""")
    return path


async def until(pilot, predicate, timeout: float = 60.0, what: str = "condition"):
    """Let the app run until `predicate()` is true (checked every 0.1 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture
def helpers():
    class Helpers:
        pass

    Helpers.write_profile = staticmethod(write_profile)
    Helpers.until = staticmethod(until)
    return Helpers


# Fixed data for the snapshot tests: what a snapshot reply and a job's files look like.
NOW = 1_764_370_000.0
SNAPSHOT = {
    "seq": 41,
    "jobs": [
        {"id": 3, "name": "qwen-dpo", "owner": "bob", "state": "queued", "stage": "dpo", "gpus": 2, "devices": [],
         "priority": 5, "started": None, "ended": None, "job_dir": "/var/lib/ftlab/jobs/3"},
        {"id": 2, "name": "demo_lora_sft", "owner": "ann", "state": "running", "stage": "sft", "gpus": 1,
         "devices": [0], "started": NOW - 754, "ended": None, "job_dir": "/var/lib/ftlab/jobs/2", "peak_vram_mib": 20480},
        {"id": 1, "name": "pt-warmup", "owner": "ann", "state": "succeeded", "stage": "pt", "gpus": 1,
         "devices": [], "started": NOW - 4000, "ended": NOW - 3100, "job_dir": "/var/lib/ftlab/jobs/1"},
    ],
    "devices": {
        "devices": [
            {"index": 0, "kind": "cuda", "name": "NVIDIA H200", "total_mib": 143771, "used_mib": 21504,
             "utilization": 93, "temperature_c": 64, "job": 2},
            {"index": 1, "kind": "cuda", "name": "NVIDIA H200", "total_mib": 143771, "used_mib": 512,
             "utilization": 0, "temperature_c": 31, "job": None},
        ],
        "cpu": {"index": "cpu", "kind": "cpu", "name": "CPU (16 cores)", "slots": 1, "jobs": [], "utilization": 7.0},
        "host": {"cpu_percent": 7.0, "cpu_count": 16, "ram_used_mib": 30000, "ram_total_mib": 128000},
        "source": "nvml", "jobs_vram_mib": {"2": 20992},
    },
}
METRICS = [{"event": "start", "total_steps": 40, "ts": NOW - 750}] + [
    {"step": s, "epoch": s / 20, "loss": 2.5 * 0.93 ** s, "lr": 1e-3 * (1 - s / 40), "grad_norm": 1.0,
     "tokens_per_s": 5230.0, "peak_mem_gib": 19.8, "ts": NOW - 750 + s} for s in range(1, 26)]
LOG = "".join(f"[step {s:>3}/40] loss {2.5 * 0.93 ** s:.4f} lr {1e-3 * (1 - s / 40):.2e}\n" for s in range(1, 26))
