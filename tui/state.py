"""What ftui knows about ftd: jobs, devices and per-job progress, kept by the Clone pattern.

The app takes a snapshot (jobs + devices + the event stream's sequence number) and then applies
only events with a higher sequence number: an older or repeated event is dropped as stale, and a
jump in the sequence means updates were lost, so the caller takes a new snapshot (zguide
`clonecli`). The model is plain data with no Textual in it, so it is tested on its own and the
screens only render it.

    model = Model()
    model.apply_snapshot(reply_body)
    outcome = model.apply_event(kind, seq, body)   # APPLIED, STALE or GAP
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any

from ftlab.daemon import protocol

ACTIVE_STATES = ("starting", "running")
TERMINAL_STATES = ("succeeded", "failed", "cancelled", "lost")
STATES = ("queued", "starting", "running", "succeeded", "failed", "cancelled", "lost")


class Outcome(enum.Enum):
    APPLIED = "applied"
    STALE = "stale"
    GAP = "gap"


@dataclass
class Progress:
    """A job's training progress, from its metrics records."""

    total_steps: int | None = None
    step: int | None = None
    loss: float | None = None
    lr: float | None = None
    tokens_per_s: float | None = None
    peak_mem_gib: float | None = None
    done: bool = False
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)

    def add(self, record: dict[str, Any]) -> None:
        event = record.get("event")
        if event == "start":
            self.total_steps = record.get("total_steps") or self.total_steps
            return
        if event == "end":
            self.done = True
            return
        if event is not None or "step" not in record:
            return
        step = int(record["step"])
        if self.steps and step <= self.steps[-1]:
            return  # replayed record (snapshot overlap)
        self.step = step
        self.steps.append(step)
        if record.get("loss") is not None:
            self.loss = float(record["loss"])
        self.losses.append(self.loss if self.loss is not None else float("nan"))
        if record.get("lr") is not None:
            self.lr = float(record["lr"])
        self.lrs.append(self.lr if self.lr is not None else float("nan"))
        for key in ("tokens_per_s", "peak_mem_gib"):
            if record.get(key) is not None:
                setattr(self, key, float(record[key]))

    @property
    def fraction(self) -> float | None:
        if self.done:
            return 1.0
        if self.total_steps and self.step is not None:
            return min(1.0, self.step / self.total_steps)
        return None


@dataclass
class Model:
    """Jobs by id, the latest device telemetry, per-job progress and the stream position."""

    seq: int = -1
    jobs: dict[int, dict[str, Any]] = field(default_factory=dict)
    devices: dict[str, Any] = field(default_factory=dict)
    progress: dict[int, Progress] = field(default_factory=dict)
    methods: dict[int, str] = field(default_factory=dict)  # job id → method (from `show`; not in job records)
    synced_at: float = 0.0

    def apply_snapshot(self, body: dict[str, Any]) -> None:
        """Replace everything with a snapshot reply (`jobs`, `devices`, `seq`)."""
        self.seq = int(body.get("seq", 0))
        self.jobs = {int(job["id"]): self._with_method(job) for job in body.get("jobs", [])}
        if body.get("devices") is not None:
            self.devices = body["devices"]
        progress = {}
        for job in self.jobs.values():
            prog = Progress()
            for record in job.get("metrics_tail", None) or []:
                prog.add(record)
            old = self.progress.get(job["id"])
            progress[job["id"]] = old if old is not None and old.steps and not prog.steps else prog
            _progress_from_job(progress[job["id"]], job)
        self.progress = progress
        self.synced_at = time.time()

    def apply_event(self, kind: str, seq: int | None, body: Any) -> Outcome:
        """Apply one event; heartbeats only move the sequence on."""
        if seq is not None:
            if seq <= self.seq:
                return Outcome.STALE
            if self.seq >= 0 and seq > self.seq + 1:
                return Outcome.GAP
            self.seq = seq
        if kind == protocol.EV_JOB:
            job = self._with_method(body.get("job", body))
            self.jobs[int(job["id"])] = job
            _progress_from_job(self.progress.setdefault(int(job["id"]), Progress()), job)
        elif kind == protocol.EV_METRICS:
            prog = self.progress.setdefault(int(body["job"]), Progress())
            for record in body.get("records", []):
                prog.add(record)
        elif kind == protocol.EV_DEVICES:
            self.devices = body
        return Outcome.APPLIED

    def _with_method(self, job: dict[str, Any]) -> dict[str, Any]:
        job_id = int(job["id"])
        if "method" not in job and job_id in self.methods:
            job = {**job, "method": self.methods[job_id]}
        return job

    def job_list(self, state: str | None = None, user: str | None = None) -> list[dict[str, Any]]:
        jobs = sorted(self.jobs.values(), key=lambda j: j["id"], reverse=True)
        if state == "active":
            jobs = [j for j in jobs if j["state"] in ("queued",) + ACTIVE_STATES]
        elif state:
            jobs = [j for j in jobs if j["state"] == state]
        if user:
            jobs = [j for j in jobs if j.get("owner") == user]
        return jobs

    def users(self) -> list[str]:
        return sorted({j.get("owner", "") for j in self.jobs.values()})


def _progress_from_job(prog: Progress, job: dict[str, Any]) -> None:
    """Fields a job record may carry itself (the daemon's summary of its metrics)."""
    for src, dst in (("total_steps", "total_steps"), ("step", "step"), ("loss", "loss")):
        if job.get(src) is not None:
            setattr(prog, dst, job[src])
    if job.get("state") == "succeeded":
        prog.done = True
