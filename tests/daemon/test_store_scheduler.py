"""Job-state transitions are guarded and persisted; the scheduler's policy (priority, FIFO,
exclusive GPUs, refusals) on an injected inventory."""

from __future__ import annotations

import pytest
from ftlab.daemon.scheduler import Device, Inventory, Request, Scheduler
from ftlab.daemon.store import JobState, StateConflict, Store


def test_transitions_are_guarded_and_persisted(tmp_path):
    store = Store(tmp_path / "ftd.db")
    job = store.add(owner_uid=1000, owner="ann", name="a", profile={"stage": "sft"}, gpus=1, jobs_root=tmp_path)
    assert job.state == JobState.QUEUED and job.job_dir == str(tmp_path / str(job.id))
    with pytest.raises(StateConflict):
        store.transition(job.id, JobState.RUNNING)  # must start first
    store.transition(job.id, JobState.STARTING, devices=[1])
    store.transition(job.id, JobState.RUNNING, pid=123, pid_start=1.5)
    store.close()
    reopened = Store(tmp_path / "ftd.db")
    job = reopened.get(job.id)
    assert (job.state, job.devices, job.pid) == (JobState.RUNNING, [1], 123) and job.started
    reopened.transition(job.id, JobState.SUCCEEDED, returncode=0)
    with pytest.raises(StateConflict):  # a late cancel loses against the exit
        reopened.transition(job.id, JobState.CANCELLED)
    assert reopened.get(job.id).state == JobState.SUCCEEDED
    assert [j.id for j in reopened.list(owner_uid=1000)] == [job.id] and reopened.list(owner_uid=1) == []


def test_priority_fifo_exclusive_and_refusals():
    gpus = [Device(i, f"g{i}", 81920) for i in range(2)]
    scheduler = Scheduler(Inventory(gpus=gpus, cpu_slots=1, source="test-inventory"))
    queue = [Request(1, 1, priority=0), Request(2, 2, priority=5), Request(3, 1, priority=0), Request(4, 1, priority=0)]
    queue.sort(key=lambda r: (-r.priority, r.job_id))
    grants = scheduler.plan(queue)
    assert [(r.job_id, d) for r, d in grants] == [(2, [0, 1])]  # priority first; lower ones wait behind it
    scheduler.release(2)
    grants = scheduler.plan([Request(1, 1), Request(3, 1), Request(4, 1)])
    assert [(r.job_id, d) for r, d in grants] == [(1, [0]), (3, [1])]  # FIFO; never two jobs on one GPU
    assert scheduler.plan([Request(4, 1)]) == []
    assert scheduler.plan([Request(5, 0)])[0][1] == [] and scheduler.plan([Request(6, 0)]) == []  # one CPU slot
    assert "has 2 GPUs" in scheduler.check(3, None)
    assert "largest: 81920 MiB" in scheduler.check(1, 100_000)
    assert scheduler.check(2, 40_000) is None
    cpu_only = Scheduler(Inventory(gpus=[], cpu_slots=1))
    assert cpu_only.default_gpus() == 0 and "no GPU" in cpu_only.check(1, None)
