"""ftd's job store: one SQLite file (WAL) holding every job and its state, plus a folder per job.

Every state change goes through `Store.transition`, a single UPDATE guarded by the states the
job may come from (`ALLOWED`), so a transition is atomic and persisted before ftd acts on it; two
racing transitions (a cancel and a normal exit) cannot both win. The job folder holds what the
job produced: `profile.yaml` (as submitted, after client-side validation), and — written by the
engine — `config.yaml`, `log.txt`, `metrics.jsonl`, checkpoints, `final/` and `exit.json`.

    store = Store(state_dir / "ftd.db")
    job = store.add(owner_uid=1000, owner="ann", name="demo", profile={...}, gpus=1, ...)
    store.transition(job.id, JobState.STARTING, devices=[0])
"""

from __future__ import annotations

import enum
import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


class JobState(str, enum.Enum):
    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.LOST})
ACTIVE = frozenset({JobState.STARTING, JobState.RUNNING})

# to-state → states it may be entered from
ALLOWED: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.FAILED, JobState.CANCELLED, JobState.LOST}),  # resume
    JobState.STARTING: frozenset({JobState.QUEUED}),
    JobState.RUNNING: frozenset({JobState.STARTING}),
    JobState.SUCCEEDED: frozenset({JobState.RUNNING}),
    JobState.FAILED: frozenset({JobState.STARTING, JobState.RUNNING}),
    JobState.CANCELLED: frozenset({JobState.QUEUED, JobState.STARTING, JobState.RUNNING}),
    JobState.LOST: frozenset({JobState.STARTING, JobState.RUNNING}),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    owner_uid INTEGER NOT NULL,
    owner TEXT NOT NULL,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    gpus INTEGER NOT NULL DEFAULT 1,
    min_vram_mib INTEGER,
    stage TEXT NOT NULL DEFAULT 'sft',
    profile TEXT NOT NULL,
    job_dir TEXT NOT NULL DEFAULT '',
    devices TEXT NOT NULL DEFAULT '[]',
    pid INTEGER,
    pid_start REAL,
    returncode INTEGER,
    error TEXT,
    peak_vram_mib INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    started REAL,
    ended REAL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs(owner_uid, id);
"""

_COLUMNS = ("id", "name", "owner_uid", "owner", "state", "priority", "gpus", "min_vram_mib", "stage", "profile",
            "job_dir", "devices", "pid", "pid_start", "returncode", "error", "peak_vram_mib", "cancel_requested",
            "attempts", "created", "started", "ended")
_SUMMARY = tuple(c for c in _COLUMNS if c != "profile")


@dataclass
class Job:
    id: int
    name: str
    owner_uid: int
    owner: str
    state: JobState
    priority: int = 0
    gpus: int = 1
    min_vram_mib: int | None = None
    stage: str = "sft"
    profile: dict = field(default_factory=dict)
    job_dir: str = ""
    devices: list[int] = field(default_factory=list)
    pid: int | None = None
    pid_start: float | None = None
    returncode: int | None = None
    error: str | None = None
    peak_vram_mib: int | None = None
    cancel_requested: bool = False
    attempts: int = 0
    created: float = 0.0
    started: float | None = None
    ended: float | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        data = dict(row)
        data["state"] = JobState(data["state"])
        data["devices"] = json.loads(data["devices"])
        data["profile"] = json.loads(data["profile"]) if "profile" in data else {}
        data["cancel_requested"] = bool(data["cancel_requested"])
        return cls(**data)

    def to_dict(self, with_profile: bool = False) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        if not with_profile:
            data.pop("profile")
        return data


class StateConflict(Exception):
    """A transition was refused because the job is no longer in a state it may leave that way."""


class Store:
    """Thread-safe access to the job table (ftd is one asyncio thread; the lock is for tools)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def add(self, *, owner_uid: int, owner: str, name: str, profile: dict, gpus: int, priority: int = 0,
            min_vram_mib: int | None = None, stage: str = "sft", jobs_root: Path | None = None) -> Job:
        with self._lock:
            cur = self.db.execute(
                "INSERT INTO jobs (name, owner_uid, owner, state, priority, gpus, min_vram_mib, stage, profile, created)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                (name, owner_uid, owner, JobState.QUEUED.value, priority, gpus, min_vram_mib, stage,
                 json.dumps(profile), time.time()))
            job_id = cur.lastrowid
            if jobs_root is not None:
                self.db.execute("UPDATE jobs SET job_dir=? WHERE id=?", (str(jobs_root / str(job_id)), job_id))
        return self.get(job_id)

    def get(self, job_id: int) -> Job | None:
        row = self.db.execute(f"SELECT {','.join(_COLUMNS)} FROM jobs WHERE id=?", (job_id,)).fetchone()
        return Job.from_row(row) if row else None

    def list(self, owner_uid: int | None = None, states: Iterable[JobState] | None = None,
             limit: int | None = None) -> list[Job]:
        """Jobs newest first, without their profiles (cheap enough for 10,000 rows)."""
        where, params = [], []
        if owner_uid is not None:
            where.append("owner_uid=?")
            params.append(owner_uid)
        if states is not None:
            states = list(states)
            where.append(f"state IN ({','.join('?' * len(states))})")
            params += [s.value for s in states]
        sql = f"SELECT {','.join(_SUMMARY)} FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [Job.from_row(row) for row in self.db.execute(sql, params)]

    def list_dicts(self, owner_uid: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Like `list`, as plain dicts straight from the rows (the listing RPC: 10,000 rows fast)."""
        sql, params = _summary_query(owner_uid, limit)
        rows = []
        for row in self.db.execute(sql, params):
            data = dict(row)
            data["devices"] = json.loads(data["devices"])
            data["cancel_requested"] = bool(data["cancel_requested"])
            rows.append(data)
        return rows

    def list_json(self, owner_uid: int | None = None, limit: int | None = None) -> bytes:
        """The same rows as `list_dicts`, encoded to a JSON array by SQLite itself (10,000 jobs in a
        few milliseconds instead of building and encoding Python dicts)."""
        fields = []
        for column in _SUMMARY:
            value = column
            if column == "devices":
                value = "json(devices)"
            elif column == "cancel_requested":
                value = "json(CASE WHEN cancel_requested THEN 'true' ELSE 'false' END)"
            fields.append(f"'{column}', {value}")
        inner, params = _summary_query(owner_uid, limit)
        sql = f"SELECT json_group_array(json_object({', '.join(fields)})) FROM ({inner})"
        return self.db.execute(sql, params).fetchone()[0].encode()

    def queued(self) -> list[Job]:
        """Queued jobs in scheduling order: higher priority first, FIFO within a priority."""
        rows = self.db.execute(f"SELECT {','.join(_COLUMNS)} FROM jobs WHERE state=? ORDER BY priority DESC, id ASC",
                               (JobState.QUEUED.value,))
        return [Job.from_row(row) for row in rows]

    def transition(self, job_id: int, to: JobState, **fields: Any) -> Job:
        """Move a job to `to` (and set `fields`) in one guarded UPDATE; raises `StateConflict`."""
        allowed = ALLOWED[to]
        sets = {"state": to.value, **fields}
        if to == JobState.RUNNING and "started" not in sets:
            sets["started"] = time.time()
        if to.terminal and "ended" not in sets:
            sets["ended"] = time.time()
        if "devices" in sets:
            sets["devices"] = json.dumps(sets["devices"])
        if "profile" in sets:
            sets["profile"] = json.dumps(sets["profile"])
        assignments = ",".join(f"{key}=?" for key in sets)
        with self._lock:
            cur = self.db.execute(
                f"UPDATE jobs SET {assignments} WHERE id=? AND state IN ({','.join('?' * len(allowed))})",
                [*sets.values(), job_id, *(s.value for s in allowed)])
        if cur.rowcount != 1:
            job = self.get(job_id)
            now = job.state.value if job else "missing"
            raise StateConflict(f"job {job_id} is {now}; it cannot become {to.value}")
        return self.get(job_id)

    def update(self, job_id: int, **fields: Any) -> None:
        """Set bookkeeping fields that do not change the state (peak VRAM, cancel flag)."""
        if not fields:
            return
        assignments = ",".join(f"{key}=?" for key in fields)
        with self._lock:
            self.db.execute(f"UPDATE jobs SET {assignments} WHERE id=?", [*fields.values(), job_id])


def _summary_query(owner_uid: int | None, limit: int | None) -> tuple[str, list[Any]]:
    """The listing's SELECT (summary columns, newest first, optionally one owner's and limited)."""
    sql = f"SELECT {','.join(_SUMMARY)} FROM jobs"
    params: list[Any] = []
    if owner_uid is not None:
        sql += " WHERE owner_uid=?"
        params.append(owner_uid)
    sql += " ORDER BY id DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return sql, params
