"""Start, watch, stop and re-adopt job processes.

A job is `python -m ftlab.cli run <jobdir>/profile.yaml --output-dir <jobdir> --log - --progress plain`
(through torchrun — `python -m ftlab.daemon.launch N ...` — when it was granted several GPUs),
started in its own session and process group, with stdout+stderr appended to
`<jobdir>/log.txt`, `CUDA_VISIBLE_DEVICES` set to the granted GPUs (empty for CPU jobs) and, when
ftd runs as root, the submitting user's uid, gid and groups. ftd never kills jobs when it exits
(systemd: KillMode=process): on start it re-adopts live ones, recognised by pid *and* process start
time (a recycled pid is not our job), and resolves dead ones from their `exit.json`, or records
them as lost.

Cancel sends SIGTERM to the job's process group (the engine's warm stop: finish the step, write
exit.json, exit 143) and SIGKILL to the group after `grace_s`.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import yaml

from . import safe_io, serve
from .store import Job, JobState


@dataclass
class Outcome:
    state: JobState
    returncode: int | None
    error: str | None


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def read_exit(job_dir: Path, not_before: float | None = None, owner_uid: int | None = None) -> dict | None:
    """The engine's exit record, if it wrote one for this attempt."""
    try:
        record = json.loads(safe_io.read_bytes(job_dir / "exit.json", owner_uid, size=1 << 20))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("status") not in ("succeeded", "failed", "cancelled"):
        return None
    if not_before and isinstance(record.get("ts"), (int, float)) and record["ts"] < not_before - 1:
        return None
    return record


class Runner:
    def __init__(self, python: str = sys.executable, grace_s: float = 10.0):
        self.python = python
        self.grace_s = grace_s
        self.as_root = os.geteuid() == 0
        self.children: dict[int, subprocess.Popen] = {}   # job id → our own child
        self.adopted: dict[int, psutil.Process] = {}      # job id → re-adopted after a restart
        self.kill_at: dict[int, float] = {}               # job id → when SIGKILL is due

    # ── job folders ────────────────────────────────────────────────────────────────────────────
    def prepare(self, job: Job) -> Path:
        """Create the job folder and write the submitted profile (owned by the job's user)."""
        job_dir = Path(job.job_dir)
        job_dir.mkdir(mode=0o700, exist_ok=True)
        profile = dict(job.profile)
        uid, gid = (job.owner_uid, _user_gid(job.owner_uid)) if self.as_root and job.owner_uid != 0 else (None, None)
        safe_io.write_atomic(job_dir / "profile.yaml",
                             f"# job {job.id} ({job.name}) submitted by {job.owner}\n"
                             + yaml.safe_dump(profile, sort_keys=False, allow_unicode=True), uid, gid)
        owned = [job_dir]
        if job.stage == serve.STAGE:
            owned.append(serve.write_key(job_dir))
        if uid is not None:
            for path in owned:  # never follow a link the job's user may have planted
                os.chown(path, uid, gid, follow_symlinks=False)
        return job_dir

    def command(self, job: Job, devices: list[int]) -> list[str]:
        job_dir = Path(job.job_dir)
        if job.stage == serve.STAGE:
            return serve.command(self.python, job)
        engine = ["-m", "ftlab.cli", "run", str(job_dir / "profile.yaml"), "--output-dir", str(job_dir),
                  "--log", "-", "--progress", "plain"]
        if len(devices) > 1:  # torchrun, one rank per granted GPU (see ftlab.daemon.launch)
            return [self.python, "-m", "ftlab.daemon.launch", str(len(devices)), *engine[2:]]
        return [self.python, *engine]

    def environment(self, job: Job, devices: list[int]) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        env.pop("WATCHDOG_USEC", None)
        env.pop("WATCHDOG_PID", None)
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(d) for d in devices)
        env["FTLAB_JOB_ID"] = str(job.id)
        env["PYTHONUNBUFFERED"] = "1"
        if job.stage == serve.STAGE:
            env["FTLAB_API_KEY"] = serve.api_key(Path(job.job_dir)) or ""
        if self.as_root and job.owner_uid != 0:
            try:
                entry = pwd.getpwuid(job.owner_uid)
                env.update(HOME=entry.pw_dir, USER=entry.pw_name, LOGNAME=entry.pw_name)
            except KeyError:
                pass
        return env

    # ── lifecycle ──────────────────────────────────────────────────────────────────────────────
    def launch(self, job: Job, devices: list[int]) -> tuple[int, float]:
        """Start the job; returns (pid, process start time). Raises OSError if it cannot start."""
        job_dir = Path(job.job_dir)
        stale = job_dir / "exit.json"
        if stale.exists():  # from an earlier attempt (resume)
            os.replace(stale, job_dir / f"exit.attempt{job.attempts}.json")
        if job.stage == serve.STAGE:  # the new server writes its own address once it listens
            (job_dir / serve.READY_FILE).unlink(missing_ok=True)
        log_path = job_dir / "log.txt"
        user_kwargs = {}
        uid = gid = None
        if self.as_root and job.owner_uid != 0:
            uid, gid = job.owner_uid, _user_gid(job.owner_uid)
        log = safe_io.open_append(log_path, uid, gid)  # the user owns the folder: no links followed
        if uid is not None:
            user_name = pwd.getpwuid(job.owner_uid).pw_name
            user_kwargs = {"user": job.owner_uid, "group": gid,
                           "extra_groups": os.getgrouplist(user_name, gid)}
        try:
            child = subprocess.Popen(self.command(job, devices), cwd=job_dir, env=self.environment(job, devices),
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, close_fds=True, umask=0o022, **user_kwargs)
        finally:
            os.close(log)
        self.children[job.id] = child
        try:
            started = psutil.Process(child.pid).create_time()
        except psutil.Error:
            started = time.time()
        return child.pid, started

    def adopt(self, job: Job) -> bool:
        """Re-attach to a job found running at start: same pid and same start time."""
        if not job.pid:
            return False
        try:
            proc = psutil.Process(job.pid)
            if job.pid_start is not None and abs(proc.create_time() - job.pid_start) > 0.5:
                return False
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
        except psutil.Error:
            return False
        self.adopted[job.id] = proc
        return True

    def pid_of(self, job_id: int) -> int | None:
        if job_id in self.children:
            return self.children[job_id].pid
        if job_id in self.adopted:
            return self.adopted[job_id].pid
        return None

    def tracking(self) -> list[int]:
        return [*self.children, *self.adopted]

    def poll(self, job: Job) -> Outcome | None:
        """None while the job runs; its outcome once its process has ended."""
        returncode: int | None
        if job.id in self.children:
            returncode = self.children[job.id].poll()
            if returncode is None:
                return None
            del self.children[job.id]
        elif job.id in self.adopted:
            proc = self.adopted[job.id]
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    return None
            except psutil.Error:
                pass
            del self.adopted[job.id]
            returncode = None  # not our child: only exit.json can tell
        else:
            returncode = None
        self.kill_at.pop(job.id, None)
        # the process group leader is gone; make sure no stray rank keeps the GPU
        if job.pid:
            _signal_group(job.pid, signal.SIGKILL)
        return resolve(job, returncode)

    def cancel(self, job: Job) -> None:
        """Warm stop now (SIGTERM to the group), cold stop (SIGKILL) after the grace period."""
        pid = self.pid_of(job.id) or job.pid
        if pid:
            _signal_group(pid, signal.SIGTERM)
            self.kill_at.setdefault(job.id, time.monotonic() + self.grace_s)

    def escalate(self) -> None:
        now = time.monotonic()
        for job_id, due in list(self.kill_at.items()):
            if now >= due:
                pid = self.pid_of(job_id)
                if pid:
                    _signal_group(pid, signal.SIGKILL)
                del self.kill_at[job_id]


def resolve(job: Job, returncode: int | None) -> Outcome:
    """Decide a finished job's state: its exit.json first, then its return code, else lost."""
    record = read_exit(Path(job.job_dir), not_before=job.started, owner_uid=job.owner_uid)
    if record:
        state = JobState(record["status"])
        rc = record.get("returncode", returncode)
        return Outcome(state, rc if isinstance(rc, int) else returncode, record.get("error"))
    if returncode is None:
        if job.cancel_requested:
            return Outcome(JobState.CANCELLED, None, "cancelled (no exit record)")
        return Outcome(JobState.LOST, None, "the job ended while ftd was not watching and left no exit.json")
    if job.cancel_requested:
        return Outcome(JobState.CANCELLED, returncode, None)
    if returncode == 0:
        return Outcome(JobState.SUCCEEDED, 0, None)
    how = f"killed by signal {-returncode}" if returncode < 0 else f"exited with code {returncode}"
    return Outcome(JobState.FAILED, returncode, f"{how} without an exit record (see log.txt)")


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _user_gid(uid: int) -> int:
    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        return uid
