"""Real jobs through a real ftd: parallel jobs on an injected 2-GPU inventory, cancel frees a
device, refusals at submit, and jobs that outlive a `kill -9` of ftd."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from ftlab.daemon import client
from ftlab.daemon import protocol as P

pytestmark = pytest.mark.slow


def _states(ftd, ids):
    jobs = {j["id"]: j for j in ftd.request(P.JOBS)["jobs"]}
    return [jobs[i]["state"] for i in ids]


def test_two_gpus_two_jobs_third_waits_cancel_frees(start_ftd, short_dir, tiny_llama, helpers):
    daemon = start_ftd(2, "--grace", "3")
    profile = helpers.write_profile(short_dir, tiny_llama, max_steps=100000)
    with daemon.client() as ftd:
        with pytest.raises(client.RequestFailed, match="asks for 3 GPUs but this machine has 2 GPUs"):
            client.submit_file(ftd, profile, gpus=3)
        with pytest.raises(client.RequestFailed, match="refused"):
            client.submit_file(ftd, profile, gpus=1, min_vram_gib=200)
        ids = [client.submit_file(ftd, profile, gpus=1, name=f"j{i}") for i in range(3)]
        assert _states(ftd, ids) == ["running", "running", "queued"]
        devices = ftd.request(P.DEVICES)["devices"]
        assert {d["index"]: d["job"] for d in devices} == {0: ids[0], 1: ids[1]}
        shown = ftd.request(P.SHOW, {"id": ids[2]})
        assert shown["queue_position"] == 1 and shown["devices_held"] == []
        pid = ftd.request(P.SHOW, {"id": ids[1]})["pid"]
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert b"CUDA_VISIBLE_DEVICES=1" in env

        started = time.monotonic()
        ftd.request(P.CANCEL, {"id": ids[0]})
        helpers.wait_for(lambda: _states(ftd, ids) == ["cancelled", "running", "running"], 15, what="job 3 to take GPU 0")
        assert time.monotonic() - started < 10
        devices = ftd.request(P.DEVICES)["devices"]
        assert {d["index"]: d["job"] for d in ftd.request(P.DEVICES)["devices"]} == {0: ids[2], 1: ids[1]}
        for job_id in ids[1:]:
            ftd.request(P.CANCEL, {"id": job_id})
        helpers.wait_for(lambda: _states(ftd, ids) == ["cancelled"] * 3, 15, what="all jobs cancelled")
        assert all(d["job"] is None for d in ftd.request(P.DEVICES)["devices"])
        with pytest.raises(client.RequestFailed, match="already cancelled"):
            ftd.request(P.CANCEL, {"id": ids[0]})

        # resume: the same job (id, folder) is queued and started again as a second attempt
        resumed = ftd.request(P.RESUME, {"id": ids[0]})["job"]
        assert resumed["id"] == ids[0] and resumed["state"] in ("queued", "running")
        again = ftd.request(P.SHOW, {"id": ids[0]})
        assert again["state"] == "running" and again["attempts"] == 2 and again["error"] is None
        with pytest.raises(client.RequestFailed, match="only failed, cancelled or lost jobs resume"):
            ftd.request(P.RESUME, {"id": ids[0]})
        ftd.request(P.CANCEL, {"id": ids[0]})
        helpers.wait_for(lambda: _states(ftd, ids[:1]) == ["cancelled"], 15, what="the resumed job cancelled")


def test_kill_9_of_ftd_job_survives_and_succeeds(start_ftd, short_dir, tiny_llama, helpers):
    daemon = start_ftd()
    profile = helpers.write_profile(short_dir, tiny_llama, max_steps=3)
    with daemon.client() as ftd:
        job_id = client.submit_file(ftd, profile)
        job = ftd.request(P.SHOW, {"id": job_id})
        assert job["state"] == "running" and job["gpus"] == 0
    os.kill(daemon.process.pid, signal.SIGKILL)
    daemon.process.wait()
    os.kill(job["pid"], 0)  # the job did not die with its daemon

    restarted = start_ftd()
    with restarted.client() as ftd:
        again = ftd.request(P.SHOW, {"id": job_id})
        assert again["state"] in ("running", "succeeded") and again["pid"] == job["pid"]
        final = client.wait(ftd, job_id)
        assert final["state"] == "succeeded", final
        log = ftd.request(P.LOGS, {"id": job_id})["data"]
        assert "done: 3 steps" in log
    exit_record = json.loads((short_dir / "state" / "jobs" / str(job_id) / "exit.json").read_text())
    assert exit_record["status"] == "succeeded"


def test_dead_job_without_exit_record_is_lost(start_ftd, short_dir):
    from ftlab.daemon.store import JobState, Store

    state = short_dir / "state"
    (state / "jobs").mkdir(parents=True)
    store = Store(state / "ftd.db")
    job = store.add(owner_uid=0, owner="root", name="gone", profile={}, gpus=0, jobs_root=state / "jobs")
    (state / "jobs" / str(job.id)).mkdir()
    store.transition(job.id, JobState.STARTING, devices=[])
    store.transition(job.id, JobState.RUNNING, pid=2**22 - 3, pid_start=1.0)  # no such process
    store.close()
    daemon = start_ftd()
    with daemon.client() as ftd:
        shown = ftd.request(P.SHOW, {"id": job.id})
    assert shown["state"] == "lost" and "exit.json" in shown["error"]
    with sqlite3.connect(state / "ftd.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_ftctl_submit_wait_jobs_show_logs(start_ftd, short_dir, tiny_llama, helpers):
    import subprocess
    import sys

    daemon = start_ftd()
    profile = helpers.write_profile(short_dir, tiny_llama, max_steps=2)
    env = {**os.environ, "FTLAB_ENDPOINT": daemon.endpoint}

    def ftctl(*args):
        return subprocess.run([sys.executable, "-m", "ftlab.cli", *args], capture_output=True, text=True, env=env,
                              timeout=120, check=False)

    done = ftctl("submit", str(profile), "--set", "train.logging_steps=1", "--name", "cli", "--wait")
    assert done.returncode == 0, done.stderr
    assert "done: 2 steps" in done.stdout and "succeeded" in done.stderr
    jobs = json.loads(ftctl("jobs", "--json").stdout)
    assert [(j["name"], j["state"]) for j in jobs] == [("cli", "succeeded")]
    shown = json.loads(ftctl("show", str(jobs[0]["id"]), "--json").stdout)
    assert shown["exit"]["status"] == "succeeded" and shown["last_metrics"]["event"] == "end"
    assert "done: 2 steps" in ftctl("logs", str(jobs[0]["id"])).stdout
    bad = ftctl("submit", str(profile), "--set", "train.max_steps=zero")
    assert bad.returncode == 2 and "train.max_steps" in bad.stderr and "Traceback" not in bad.stderr


def test_two_gpu_job_runs_through_torchrun(start_ftd, short_dir, tiny_llama, helpers):
    """The multi-GPU launch path on the CPU: two ranks (gloo) under torchrun, one job, both devices."""
    daemon = start_ftd(2)
    profile = helpers.write_profile(short_dir, tiny_llama, max_steps=2)
    with daemon.client() as ftd:
        job_id = client.submit_file(ftd, profile, gpus=2)
        running = ftd.request(P.SHOW, {"id": job_id})
        assert running["devices"] == [0, 1]
        assert {d["index"]: d["job"] for d in ftd.request(P.DEVICES)["devices"]} == {0: job_id, 1: job_id}
        final = client.wait(ftd, job_id)
        log = ftd.request(P.LOGS, {"id": job_id})["data"]
    assert final["state"] == "succeeded", log[-3000:]
    assert "torch/distributed/run.py" in log and "done: 2 steps" in log
