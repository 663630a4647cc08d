"""ftd itself: one asyncio loop serving requests, running the scheduler and publishing events.

    config = DaemonConfig(state_dir=..., endpoints=["ipc:///run/user/1000/ftlab/ftd.sock"])
    asyncio.run(Daemon(config).run())

Loops in the one thread: a ROUTER per request endpoint (`_serve`), a 0.2 s monitor (job exits,
cancel escalation, log/metrics tailing → events), a 1 s telemetry sampler (→ `devices` events,
which double as server heartbeats) and the systemd watchdog. Every handler is a short synchronous
function; nothing blocks the loop for long, so a request is answered in well under a millisecond
plus SQLite time. Any exception inside a handler becomes an error reply — a request never brings
ftd down.
"""

from __future__ import annotations

import asyncio
import fcntl
import grp
import json
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio

from ftlab import __version__

from . import protocol as P
from . import safe_io, serve
from .auth import DEFAULT_ADMIN_GROUP, AuthError, Authority, CurveKeys, Identity, start_curve_authenticator
from .runner import Runner, write_atomic
from .scheduler import Request, Scheduler, discover
from .store import ACTIVE, JobState, StateConflict, Store
from .systemd_notify import notify
from .tail import Tail
from .telemetry import Telemetry, process_tree

log = logging.getLogger("ftd")


@dataclass
class DaemonConfig:
    state_dir: Path
    endpoints: list[str]
    admin_group: str | None = DEFAULT_ADMIN_GROUP
    cpu_slots: int = 1
    grace_s: float = 10.0
    recent_limit: int = 200
    watchdog_s: float | None = None  # from WATCHDOG_USEC when systemd asks for it
    python: str | None = None
    multi_user: bool = field(default_factory=lambda: os.geteuid() == 0)


class DaemonAlreadyRunning(Exception):
    """Another ftd owns this socket or state dir."""


def _socket_alive(path: Path) -> bool:
    """Whether something accepts connections on this Unix socket (a stale file does not)."""
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(str(path))
            return True
        except OSError:
            return False


class ClientError(Exception):
    """A request that cannot be served; the message goes back to the client as is."""

    def __init__(self, message: str, code: str = "bad_request"):
        super().__init__(message)
        self.code = code


def ipc_path(endpoint: str) -> Path:
    return Path(endpoint[len("ipc://"):])


def session_key_path(endpoint: str) -> Path:
    """The session key sits next to the request socket: ftd.sock → ftd.key."""
    path = ipc_path(endpoint)
    return path.with_suffix(".key")


class Stream:
    """One PUB socket with its own sequence numbers; `audience` is a uid, "admin" or "all"."""

    def __init__(self, socket: zmq.asyncio.Socket, endpoint: str, audience: Any, private: bool):
        self.socket, self.endpoint, self.audience, self.private = socket, endpoint, audience, private
        self.seq = 0


class Daemon:
    def __init__(self, config: DaemonConfig):
        self.config = config
        self.ctx = zmq.asyncio.Context()
        self.state_dir = config.state_dir
        self.jobs_root = self.state_dir / "jobs"
        self.authority = Authority(config.admin_group)
        self.streams: dict[Any, Stream] = {}
        self.routers: list[tuple[zmq.asyncio.Socket, str]] = []
        self.session: P.Session | None = None
        self.curve: CurveKeys | None = None
        self.tails: dict[int, tuple[Tail, Tail]] = {}
        self.latest_devices: dict = {}
        self.clients: dict[bytes, float] = {}
        self._peaks: dict[int, int] = {}  # job id → peak VRAM (MiB) seen so far
        self.started = time.time()
        self.handlers: dict[str, Callable[[Identity, Any], Any]] = {
            P.HELLO: self.on_hello, P.PING: self.on_ping, P.SUBMIT: self.on_submit, P.JOBS: self.on_jobs,
            P.SHOW: self.on_show, P.LOGS: self.on_logs, P.METRICS: self.on_metrics, P.CANCEL: self.on_cancel,
            P.RESUME: self.on_resume, P.DEVICES: self.on_devices, P.SNAPSHOT: self.on_snapshot,
            P.REGISTER_KEY: self.on_register_key, P.CHAT: self.on_chat,
        }

    # ── setup ──────────────────────────────────────────────────────────────────────────────────
    def _setup_dirs(self) -> None:
        multi = self.config.multi_user
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # multi-user: job users must reach their own job folder, never list others'
        os.chmod(self.state_dir, 0o711 if multi else 0o700)
        self.jobs_root.mkdir(exist_ok=True, mode=0o700)
        os.chmod(self.jobs_root, 0o711 if multi else 0o700)

    def _bind_requests(self) -> None:
        # one key for the daemon's lifetime *and* across restarts, so clients reconnect seamlessly
        key_file = self.state_dir / "session.key"
        if not key_file.exists():
            write_atomic(key_file, P.Session.new_key().decode() + "\n", 0o600)
        key = key_file.read_text().strip().encode()
        for endpoint in self.config.endpoints:
            if endpoint.startswith("ipc://"):
                path = ipc_path(endpoint)
                if _socket_alive(path):
                    raise DaemonAlreadyRunning(f"another ftd already answers on {endpoint}")
                if not path.parent.exists():  # only a folder we create gets our mode
                    path.parent.mkdir(parents=True, mode=0o700)
                    os.chmod(path.parent, 0o755 if self.config.multi_user else 0o700)
                write_atomic(session_key_path(endpoint), key.decode() + "\n",
                             0o644 if self.config.multi_user else 0o600)
        self.session = P.Session(key)
        for endpoint in self.config.endpoints:
            sock = self.ctx.socket(zmq.ROUTER)
            sock.setsockopt(zmq.MAXMSGSIZE, P.MAX_MESSAGE_BYTES)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
            sock.setsockopt(zmq.SNDHWM, 10000)
            if endpoint.startswith("tcp://"):
                self._curve_server(sock)
                transport = "tcp"
            elif endpoint.startswith("ipc://"):
                transport = "ipc"
            else:
                raise ValueError(f"unsupported endpoint {endpoint!r} (use ipc:// or tcp://)")
            sock.bind(endpoint)
            if transport == "ipc":
                os.chmod(ipc_path(endpoint), 0o666 if self.config.multi_user else 0o600)
            else:  # TCP clients get device telemetry and heartbeats on port+1 (see auth)
                self._tcp_events(sock.getsockopt(zmq.LAST_ENDPOINT).decode())
            self.routers.append((sock, transport))

    def _curve_server(self, sock: zmq.Socket) -> None:
        if self.curve is None:
            self.curve = CurveKeys(self.state_dir)
            self._zap = start_curve_authenticator(self.ctx, self.curve)
        sock.curve_server = True
        sock.curve_secretkey = self.curve.secret
        sock.curve_publickey = self.curve.public

    def _tcp_events(self, bound: str) -> None:
        host, port = bound[len("tcp://"):].rsplit(":", 1)
        pub = self.ctx.socket(zmq.PUB)
        self._curve_server(pub)
        endpoint = f"tcp://{host}:{int(port) + 1}"
        pub.bind(endpoint)
        self.streams["tcp"] = Stream(pub, endpoint, "tcp", private=False)

    def _stream_for(self, identity: Identity) -> Stream:
        """The PUB socket this identity may read (created on first use)."""
        if identity.transport == "tcp":
            return self.streams["tcp"]
        if not self.config.multi_user:
            audience = "all"
        else:
            audience = "admin" if identity.admin else identity.uid
        if audience in self.streams:
            return self.streams[audience]
        base = ipc_path(next(e for e in self.config.endpoints if e.startswith("ipc://")))
        name = {"all": "events", "admin": "events-admin"}.get(audience, f"events-{audience}")
        path = base.with_name(f"{base.stem}-{name}.sock")
        pub = self.ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.SNDHWM, 200000)
        pub.setsockopt(zmq.LINGER, 0)
        pub.bind(f"ipc://{path}")
        if audience == "admin":
            gid = 0
            if self.config.admin_group:
                try:
                    gid = grp.getgrnam(self.config.admin_group).gr_gid
                except KeyError:
                    gid = 0
            os.chown(path, 0, gid)
            os.chmod(path, 0o660)
        elif isinstance(audience, int):
            os.chown(path, audience, identity.gid if identity.gid >= 0 else -1)
            os.chmod(path, 0o600)
        else:
            os.chmod(path, 0o600)
        stream = Stream(pub, f"ipc://{path}", audience, private=True)
        self.streams[audience] = stream
        return stream

    # ── events ─────────────────────────────────────────────────────────────────────────────────
    def publish(self, kind: str, topic: str, body: Any, owner_uid: int | None = None) -> None:
        """Send an event to every stream allowed to see it (owner None: everyone)."""
        for stream in self.streams.values():
            if owner_uid is not None:
                if not stream.private:
                    continue
                if stream.audience not in ("all", "admin", owner_uid):
                    continue
            stream.seq += 1
            try:
                stream.socket.send_multipart(self.session.event(topic, kind, stream.seq, body), flags=zmq.NOBLOCK)
            except zmq.Again:
                pass  # the subscriber sees a sequence gap and resyncs

    def publish_job(self, job) -> None:
        self.publish(P.EV_JOB, f"job.{job.id}", job.to_dict(), job.owner_uid)

    # ── request loop ───────────────────────────────────────────────────────────────────────────
    async def _serve(self, sock: zmq.asyncio.Socket, transport: str) -> None:
        while True:
            try:
                frames = await sock.recv_multipart(copy=False)
            except zmq.ZMQError as err:
                if err.errno == zmq.ETERM:
                    return
                log.warning("receive failed: %s", err)
                continue
            except asyncio.CancelledError:
                return
            reply = self._handle(frames, transport)
            if reply is not None:
                try:
                    await sock.send_multipart([frames[0].bytes, *reply], flags=zmq.NOBLOCK)
                except zmq.ZMQError as err:
                    log.debug("reply dropped: %s", err)

    def _handle(self, frames: list[zmq.Frame], transport: str) -> list[bytes] | None:
        """Answer one request; malformed input gets an error reply or is dropped, never raised."""
        if len(frames) < 2:
            return None
        try:
            message = self.session.unpack([f.bytes for f in frames[1:]])
        except P.ProtocolError as err:
            log.info("dropped malformed request (%s): %s", err.code, err)
            return self.session.error(None, str(err), code=err.code)
        request_id = message.id if isinstance(message.id, str) else None
        try:
            identity = self.authority.identify(frames[1], transport)
        except AuthError as err:
            return self.session.error(request_id, str(err), code="auth")
        handler = self.handlers.get(message.type)
        if handler is None:
            return self.session.error(request_id, f"unknown request type {message.type!r}", code="unknown_type")
        self.clients[frames[0].bytes] = time.monotonic()
        try:
            body = message.body if isinstance(message.body, dict) else {}
            return self.session.reply(request_id, handler(identity, body))
        except ClientError as err:
            return self.session.error(request_id, str(err), code=err.code)
        except Exception as err:  # a bug must not take the daemon down
            log.exception("request %s failed", message.type)
            return self.session.error(request_id, f"internal error: {type(err).__name__}: {err}", code="internal")

    # ── handlers ───────────────────────────────────────────────────────────────────────────────
    def _job_for(self, identity: Identity, body: dict):
        try:
            job_id = int(body.get("id"))
        except (TypeError, ValueError):
            raise ClientError("a job id (a number) is required") from None
        job = self.store.get(job_id)
        if job is None or not self.authority.may_access(identity, job.owner_uid):
            raise ClientError(f"no job {job_id} (or it is not yours)", code="not_found")
        return job

    def on_hello(self, identity: Identity, body: dict) -> dict:
        stream = self._stream_for(identity)
        return {"user": identity.user, "uid": identity.uid, "admin": identity.admin, "transport": identity.transport,
                "events": stream.endpoint, "job_events": stream.private, "seq": stream.seq,
                "daemon": __version__, "protocol": P.VERSION.decode(), "pid": os.getpid(),
                "heartbeat_s": P.HEARTBEAT_S, "mode": "system" if self.config.multi_user else "user"}

    def on_ping(self, identity: Identity, body: dict) -> dict:
        return {"ts": time.time(), "uptime_s": round(time.time() - self.started, 3), "pid": os.getpid()}

    def on_submit(self, identity: Identity, body: dict) -> dict:
        from ftlab.engine.config import load_profile_data

        from ftlab.errors import UserError

        if body.get("serve") is not None:  # a model held for chat and the OpenAI API (daemon/serve.py)
            try:
                job_profile = serve.job_profile(body["serve"])
            except ValueError as err:
                raise ClientError(str(err), code="invalid_profile") from None
            stage = serve.STAGE
            body.setdefault("name", f"serve {Path(job_profile['model']['name_or_path']).name}")
        else:
            profile = body.get("profile")
            if not isinstance(profile, dict):
                raise ClientError("submit needs a profile (a mapping)")
            try:
                loaded = load_profile_data(dict(profile), str(body.get("source") or "submitted profile"))
            except UserError as err:
                raise ClientError(str(err), code="invalid_profile") from None
            job_profile, stage = loaded.profile.model_dump(mode="json"), loaded.profile.stage
        gpus = body.get("gpus")
        gpus = self.scheduler.default_gpus() if gpus is None else gpus
        min_vram = body.get("min_vram_gib")
        priority = body.get("priority", 0)
        if not isinstance(gpus, int) or not isinstance(priority, int):
            raise ClientError("gpus and priority must be integers")
        min_vram_mib = int(float(min_vram) * 1024) if min_vram else None
        reason = self.scheduler.check(gpus, min_vram_mib)
        if reason:
            raise ClientError(f"refused: the job {reason}", code="unsatisfiable")
        name = str(body.get("name") or Path(str(body.get("source") or "job")).stem)[:80]
        job = self.store.add(owner_uid=identity.uid, owner=identity.user, name=name,
                             profile=job_profile, gpus=gpus, priority=priority,
                             min_vram_mib=min_vram_mib, stage=stage, jobs_root=self.jobs_root)
        self.runner.prepare(job)
        log.info("job %s queued by %s (%s, %d GPU)", job.id, identity.user, name, gpus)
        self.publish_job(job)
        self.schedule()
        job = self.store.get(job.id)
        return {"id": job.id, "job": job.to_dict()}

    def on_chat(self, identity: Identity, body: dict) -> dict:
        """Relay messages to a serve job; the answer streams as `chat` events (daemon/serve.py).

        `id` names the serve job; or `model` (+ `adapter`) names what to talk to, and ftd uses the
        caller's serve job holding it, starting one when there is none (the answer then waits for it).
        """
        import threading

        if body.get("id") is None and isinstance(body.get("model"), str):
            job = self._serve_job_for(identity, body["model"], body.get("adapter"))
        else:
            job = self._job_for(identity, body)
            if job.stage != serve.STAGE:
                raise ClientError(f"job {job.id} is not a serve job (start one with `ftctl serve MODEL --submit`)",
                                  code="not_serving")
            if job.state != JobState.RUNNING or serve.endpoint(Path(job.job_dir)) is None:
                raise ClientError(f"job {job.id} is {job.state.value}" + (", loading its model; try again shortly"
                                  if job.state in ACTIVE else ""), code="not_ready")
        try:
            request = serve.chat_request(body, f"job-{job.id}")
        except ValueError as err:
            raise ClientError(str(err)) from None
        chat_id = P.new_id()
        loop = asyncio.get_running_loop()

        def emit(event: dict) -> None:
            loop.call_soon_threadsafe(self.publish, P.EV_CHAT, f"job.{job.id}",
                                      {"job": job.id, "chat": chat_id, "stream": chat_id, **event}, job.owner_uid)

        threading.Thread(target=serve.relay_chat_when_ready, args=(Path(job.job_dir), request, emit),
                         name=f"ftd-chat-{chat_id}", daemon=True).start()
        return {"chat": chat_id, "stream": chat_id, "job": job.id}

    def _serve_job_for(self, identity: Identity, model: str, adapter: str | None):
        """The caller's active serve job holding model + adapter; a new one when there is none."""
        for summary in self.store.list(owner_uid=identity.uid, states=ACTIVE):
            job = self.store.get(summary.id) if summary.stage == serve.STAGE else None
            held = job.profile.get("model", {}) if job else {}
            if job and held.get("name_or_path") == model and held.get("adapter") == adapter:
                return job
        reply = self.on_submit(identity, {"serve": {"model": model, "adapter": adapter}})
        return self.store.get(reply["id"])

    def _listing(self, identity: Identity, body: dict) -> tuple[int | None, int | None, str]:
        """(owner filter, limit, scope) for a listing request; only admins may list everyone."""
        everyone = bool(body.get("all")) and identity.admin
        limit = body.get("limit", self.config.recent_limit)
        limit = int(limit) if isinstance(limit, int) and limit > 0 else None
        return (None if everyone else identity.uid), limit, ("all" if everyone else identity.user)

    def on_jobs(self, identity: Identity, body: dict) -> P.RawJSON:
        owner, limit, scope = self._listing(identity, body)
        jobs = self.store.list_json(owner, limit=limit)  # encoded by SQLite: the body is passed through
        return P.RawJSON(b'{"jobs":' + jobs + b',"scope":' + json.dumps(scope).encode() + b"}")

    def on_show(self, identity: Identity, body: dict) -> dict:
        from .runner import read_exit

        job = self._job_for(identity, body)
        data = job.to_dict(with_profile=True)
        data["exit"] = read_exit(Path(job.job_dir), owner_uid=job.owner_uid) if job.state.terminal else None
        data["queue_position"] = None
        if job.state == JobState.QUEUED:
            data["queue_position"] = [j.id for j in self.store.queued()].index(job.id) + 1
        data["devices_held"] = job.devices if job.state in ACTIVE else []
        tail = self.tails.get(job.id)
        data["last_metrics"] = tail[1].last_record if tail else _last_metrics(Path(job.job_dir), job.owner_uid)
        return data

    def on_logs(self, identity: Identity, body: dict) -> dict:
        job = self._job_for(identity, body)
        path = Path(job.job_dir) / "log.txt"
        max_bytes = min(int(body.get("max_bytes") or 1 << 20), 4 << 20)
        offset = int(body.get("offset") or 0)
        data, size = b"", 0
        try:  # the job's user owns the folder: no links, only their own regular file
            with safe_io.open_read(path, job.owner_uid) as handle:
                size = os.fstat(handle.fileno()).st_size
                if offset < 0:
                    offset = max(0, size + offset)
                if offset < size:
                    handle.seek(offset)
                    data = handle.read(max_bytes)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise ClientError(f"cannot read job {job.id}'s log: {err}", code="unsafe_file") from None
        offset = max(offset, 0)
        return {"id": job.id, "offset": offset, "end": offset + len(data), "size": size,
                "data": data.decode("utf-8", errors="replace"), "state": job.state.value}

    def on_metrics(self, identity: Identity, body: dict) -> dict:
        import json

        job = self._job_for(identity, body)
        records = []
        try:
            with safe_io.open_read(Path(job.job_dir) / "metrics.jsonl", job.owner_uid) as handle:
                for line in handle:
                    try:
                        records.append(json.loads(line))
                    except ValueError:
                        pass
        except OSError:
            pass
        return {"id": job.id, "records": records[-int(body.get("limit") or 5000):]}

    def on_cancel(self, identity: Identity, body: dict) -> dict:
        job = self._job_for(identity, body)
        if job.state.terminal:
            raise ClientError(f"job {job.id} is already {job.state.value}", code="conflict")
        if job.state == JobState.QUEUED:
            try:
                job = self.store.transition(job.id, JobState.CANCELLED, cancel_requested=1)
            except StateConflict as err:
                raise ClientError(str(err), code="conflict") from None
            self.publish_job(job)
            self.schedule()
        else:
            self.store.update(job.id, cancel_requested=1)
            job = self.store.get(job.id)
            self.runner.cancel(job)
            log.info("job %s: cancel requested by %s", job.id, identity.user)
        return {"id": job.id, "job": job.to_dict()}

    def on_resume(self, identity: Identity, body: dict) -> dict:
        job = self._job_for(identity, body)
        if job.state not in (JobState.FAILED, JobState.CANCELLED, JobState.LOST):
            raise ClientError(f"job {job.id} is {job.state.value}; only failed, cancelled or lost jobs resume",
                              code="conflict")
        profile = dict(job.profile)
        if any(Path(job.job_dir).glob("checkpoint-*")):
            profile["train"] = {**profile.get("train", {}), "resume_from_checkpoint": "last"}
        job = self.store.transition(job.id, JobState.QUEUED, profile=profile, cancel_requested=0, pid=None,
                                    pid_start=None, returncode=None, error=None, ended=None, devices=[])
        self.runner.prepare(job)
        self.publish_job(job)
        self.schedule()
        return {"id": job.id, "job": self.store.get(job.id).to_dict()}

    def on_devices(self, identity: Identity, body: dict) -> dict:
        data = dict(self.latest_devices or self._sample()[0])
        # live figures are up to a second old; who holds what is always current
        data["devices"] = [{**d, "job": self.scheduler.holders.get(d["index"])} for d in data["devices"]]
        data["cpu"] = {**data["cpu"], "jobs": sorted(self.scheduler.cpu_holders)}
        return data

    def on_snapshot(self, identity: Identity, body: dict) -> dict:
        stream = self._stream_for(identity)
        owner, limit, _ = self._listing(identity, {"all": body.get("all", True), "limit": body.get("limit")})
        jobs = self.store.list_dicts(owner, limit=limit)
        return {"seq": stream.seq, "jobs": jobs, "devices": self.on_devices(identity, {})}

    def on_register_key(self, identity: Identity, body: dict) -> dict:
        if identity.transport != "ipc":
            raise ClientError("register a key over the local Unix socket", code="auth")
        if self.curve is None:
            raise ClientError("this ftd has no TCP endpoint (start it with --endpoint tcp://HOST:PORT)")
        try:
            self.curve.authorize(identity.uid, str(body.get("public_key") or ""))
        except ValueError as err:
            raise ClientError(str(err)) from None
        return {"server_public": self.curve.public.decode(), "session_key": self.session.key.decode(),
                "endpoints": [e for e in self.config.endpoints if e.startswith("tcp://")]}

    # ── scheduling and monitoring ──────────────────────────────────────────────────────────────
    def schedule(self) -> None:
        queue = self.store.queued()
        requests = [Request(j.id, j.gpus, j.min_vram_mib, j.priority) for j in queue]
        by_id = {j.id: j for j in queue}
        for request, devices in self.scheduler.plan(requests):
            job = by_id[request.job_id]
            try:
                job = self.store.transition(job.id, JobState.STARTING, devices=devices)
            except StateConflict:
                self.scheduler.release(job.id)
                continue
            self.publish_job(job)
            try:
                pid, started = self.runner.launch(job, devices)
            except OSError as err:
                self.scheduler.release(job.id)
                job = self.store.transition(job.id, JobState.FAILED, error=f"could not start: {err}")
                self.publish_job(job)
                continue
            job = self.store.transition(job.id, JobState.RUNNING, pid=pid, pid_start=started,
                                        attempts=job.attempts + 1)
            self._start_tail(job)
            log.info("job %s running (pid %s, devices %s)", job.id, pid, devices or "cpu")
            self.publish_job(job)

    def _start_tail(self, job, from_end: bool = False) -> None:
        job_dir = Path(job.job_dir)
        self.tails[job.id] = (Tail(job_dir / "log.txt", from_end=from_end, owner_uid=job.owner_uid),
                              Tail(job_dir / "metrics.jsonl", from_end=from_end, json_lines=True,
                                   owner_uid=job.owner_uid))

    def _pump(self, job_id: int, owner_uid: int) -> None:
        log_tail, metrics_tail = self.tails[job_id]
        for offset, end, lines in log_tail.read():
            self.publish(P.EV_LOG, f"job.{job_id}", {"job": job_id, "offset": offset, "end": end, "lines": lines},
                         owner_uid)
        records = [r for _, _, batch in metrics_tail.read() for r in batch]
        if records:
            self.publish(P.EV_METRICS, f"job.{job_id}", {"job": job_id, "records": records}, owner_uid)
            # the engine's own peak (torch.cuda.max_memory_allocated) backs NVML up where NVML cannot
            # attribute processes to jobs (containers with their own pid namespace)
            peaks = [r["peak_mem_gib"] for r in records if isinstance(r.get("peak_mem_gib"), (int, float))]
            if peaks and self.store.get(job_id).gpus:
                mib = int(max(peaks) * 1024)
                if mib > self._peaks.get(job_id, 0):
                    self._peaks[job_id] = mib
                    self.store.update(job_id, peak_vram_mib=mib)

    def monitor(self) -> None:
        finished = False
        for job_id in self.runner.tracking():
            job = self.store.get(job_id)
            if job is None:
                continue
            outcome = self.runner.poll(job)
            if job_id in self.tails:
                self._pump(job_id, job.owner_uid)
            if outcome is None:
                continue
            self.tails.pop(job_id, None)
            self.scheduler.release(job_id)
            try:
                job = self.store.transition(job_id, outcome.state, returncode=outcome.returncode, error=outcome.error)
            except StateConflict as err:
                log.warning("%s", err)
                continue
            log.info("job %s %s (rc %s)", job_id, job.state.value, outcome.returncode)
            self.publish_job(job)
            finished = True
        self.runner.escalate()
        if finished:
            self.schedule()

    def recover(self) -> None:
        """Re-adopt jobs that outlived the previous ftd; resolve the rest from exit.json or as lost."""
        from .runner import resolve

        for job in self.store.list(states=ACTIVE):
            if self.runner.adopt(job):
                self.scheduler.hold(job.id, job.devices, job.gpus)
                self._start_tail(job, from_end=True)
                if job.state == JobState.STARTING:
                    job = self.store.transition(job.id, JobState.RUNNING)
                log.info("job %s re-adopted (pid %s)", job.id, job.pid)
                continue
            outcome = resolve(job, None)
            job = self.store.transition(job.id, outcome.state, returncode=outcome.returncode, error=outcome.error)
            log.info("job %s found %s at start", job.id, job.state.value)

    def _sample(self) -> tuple[dict, dict[int, int]]:
        pids = {job_id: process_tree(pid) for job_id in self.runner.tracking()
                if (pid := self.runner.pid_of(job_id))}
        body, job_vram = self.telemetry.sample(self.scheduler, pids)
        return body, job_vram

    async def _telemetry_loop(self) -> None:
        while True:
            body, job_vram = self._sample()
            for job_id, mib in job_vram.items():
                if mib > self._peaks.get(job_id, 0):
                    self._peaks[job_id] = mib
                    self.store.update(job_id, peak_vram_mib=mib)
            body["jobs_vram_mib"] = {str(k): v for k, v in job_vram.items()}
            self.latest_devices = body
            self.publish(P.EV_DEVICES, P.EV_DEVICES, body)
            self.publish(P.EV_HEARTBEAT, P.EV_HEARTBEAT, {"ts": time.time(), "pid": os.getpid()})
            cutoff = time.monotonic() - P.HEARTBEAT_S * P.HEARTBEAT_LIVENESS * 10
            for ident in [i for i, seen in self.clients.items() if seen < cutoff]:
                del self.clients[ident]
            await asyncio.sleep(P.HEARTBEAT_S)

    async def _monitor_loop(self) -> None:
        while True:
            try:
                self.monitor()
            except Exception:
                log.exception("monitor pass failed")
            await asyncio.sleep(0.2)

    async def _watchdog_loop(self) -> None:
        while True:
            running = len(self.runner.tracking())
            queued = len(self.store.list(states=[JobState.QUEUED], limit=1000))
            notify(f"WATCHDOG=1\nSTATUS={running} running, {queued} queued")
            await asyncio.sleep(self.config.watchdog_s / 2 if self.config.watchdog_s else 5.0)

    # ── main ───────────────────────────────────────────────────────────────────────────────────
    async def run(self) -> None:
        self._setup_dirs()
        self._lock = open(self.state_dir / "ftd.lock", "a")  # noqa: SIM115, ASYNC230 (held for ftd's lifetime)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DaemonAlreadyRunning(f"another ftd already uses the state dir {self.state_dir}") from None
        self.store = Store(self.state_dir / "ftd.db")
        os.chmod(self.state_dir / "ftd.db", 0o600)
        inventory = discover(self.config.cpu_slots)
        self.scheduler = Scheduler(inventory)
        self.runner = Runner(self.config.python or __import__("sys").executable, self.config.grace_s)
        self.telemetry = Telemetry(inventory)
        self._bind_requests()
        if not self.config.multi_user:
            self._stream_for(Identity(os.getuid(), os.getgid(), "", True, "ipc"))
        self.recover()
        self.schedule()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        tasks = [asyncio.create_task(self._serve(sock, transport)) for sock, transport in self.routers]
        tasks += [asyncio.create_task(self._monitor_loop()), asyncio.create_task(self._telemetry_loop()),
                  asyncio.create_task(self._watchdog_loop())]
        gpus = len(inventory.gpus)
        log.info("ftd %s ready on %s (%s; %d GPU, %d CPU slot)", __version__, ", ".join(self.config.endpoints),
                 inventory.source, gpus, inventory.cpu_slots)
        notify(f"READY=1\nSTATUS=serving {len(self.config.endpoints)} endpoint(s), {gpus} GPU(s)\nMAINPID={os.getpid()}")
        await stop.wait()
        notify("STOPPING=1\nSTATUS=stopping; running jobs are left alone")
        log.info("ftd stopping; %d job(s) keep running and will be re-adopted", len(self.runner.tracking()))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for sock, _ in self.routers:
            sock.close(0)
        for stream in self.streams.values():
            stream.socket.close(0)
        for endpoint in self.config.endpoints:
            if endpoint.startswith("ipc://"):
                for path in [ipc_path(endpoint)] + [ipc_path(s.endpoint) for s in self.streams.values()
                                                   if s.endpoint.startswith("ipc://")]:
                    path.unlink(missing_ok=True)
        if getattr(self, "_zap", None) is not None:
            self._zap.stop()
        self.ctx.destroy(linger=0)
        self.store.close()


def _last_metrics(job_dir: Path, owner_uid: int) -> dict | None:
    try:
        with safe_io.open_read(job_dir / "metrics.jsonl", owner_uid) as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - 65536))
            lines = handle.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None
