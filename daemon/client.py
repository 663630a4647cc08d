"""Talking to ftd from Python: ftctl, ftui and the demo use this module, nothing else.

    from ftlab.daemon import client
    with client.connect() as ftd:                 # FTLAB_ENDPOINT, else the user socket, else /run/ftlab
        job_id = client.submit_file(ftd, "profiles/demo_lora_sft.yaml", ["train.max_steps=5"])
        job = client.wait(ftd, job_id, out=sys.stdout)   # follows the log; returns the final job record

    daemon = client.start_daemon()                # a user-mode ftd as a child process (demo, tests)
    ...
    daemon.stop()

Requests go over a DEALER socket with a timeout (zguide "lazy pirate"): read-only requests are
retried on a fresh socket with capped exponential backoff, and the client says on stderr that it
is reconnecting; state-changing requests (submit, cancel, resume) are never retried blindly.
Following a job uses the event stream (subscribe, then read the log by byte offset and apply
only newer events; a sequence or offset gap is filled with a `logs` request), and falls back to
polling when the stream stays silent past the heartbeat liveness.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import zmq

from ftlab import paths
from ftlab.errors import UserError

from . import protocol as P

TERMINAL_STATES = {"succeeded", "failed", "cancelled", "lost"}
IDEMPOTENT = {P.HELLO, P.PING, P.JOBS, P.SHOW, P.LOGS, P.METRICS, P.DEVICES, P.SNAPSHOT}
START_HINT = "start it with `ftd` (or `systemctl --user start ftd`), or set FTLAB_ENDPOINT"


class DaemonUnavailable(UserError):
    """No ftd answers at the endpoint (exit code 2 with a one-line hint)."""


class RequestFailed(UserError):
    """ftd answered with an error (the message is ftd's)."""

    def __init__(self, message: str, code: str = "error"):
        super().__init__(message)
        self.code = code


def user_endpoint() -> str:
    return f"ipc://{paths.user_runtime_dir() / 'ftd.sock'}"


def system_endpoint() -> str:
    return f"ipc://{paths.SYSTEM_RUNTIME_DIR / 'ftd.sock'}"


def find_endpoint() -> str:
    """FTLAB_ENDPOINT, else the user socket if it exists, else the system socket if it exists."""
    explicit = os.environ.get("FTLAB_ENDPOINT")
    if explicit:
        return explicit
    for endpoint in (user_endpoint(), system_endpoint()):
        if Path(endpoint[len("ipc://"):]).exists():
            return endpoint
    raise DaemonUnavailable(f"ftd is not running (no socket at {user_endpoint()[6:]} or "
                            f"{system_endpoint()[6:]}); {START_HINT}")


def curve_file(endpoint: str) -> Path:
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "ftlab"
    safe = endpoint.replace("tcp://", "").replace(":", "_").replace("/", "_")
    return config / f"curve-{safe}.json"


class Client:
    """One connection to ftd: `request(type, body)` returns the reply body or raises."""

    def __init__(self, endpoint: str | None = None, timeout: float = 10.0, retries: int = 3,
                 say: Callable[[str], None] | None = None):
        self.endpoint = endpoint or find_endpoint()
        self.timeout = timeout
        self.retries = retries
        self.say = say or (lambda text: print(text, file=sys.stderr))
        self.ctx = zmq.Context.instance()
        self.curve: dict | None = None
        if self.endpoint.startswith("tcp://"):
            path = curve_file(self.endpoint)
            try:
                self.curve = json.loads(path.read_text())
            except (OSError, ValueError):
                raise DaemonUnavailable(f"no CURVE credentials for {self.endpoint} ({path}); register once on the "
                                        f"server with `ftctl ping --register-key {self.endpoint}`") from None
            key = self.curve["session_key"].encode()
        elif self.endpoint.startswith("ipc://"):
            key_file = Path(self.endpoint[len("ipc://"):]).with_suffix(".key")
            try:
                key = key_file.read_text().strip().encode()
            except FileNotFoundError:
                raise DaemonUnavailable(f"ftd is not running at {self.endpoint} (no {key_file}); {START_HINT}") from None
            except PermissionError:
                raise DaemonUnavailable(f"cannot read {key_file}: that ftd belongs to another user") from None
        else:
            raise UserError(f"FTLAB_ENDPOINT={self.endpoint!r}: expected ipc://PATH or tcp://HOST:PORT")
        self.session = P.Session(key)
        self.sock: zmq.Socket | None = None
        self.hello_info: dict | None = None

    def _secure(self, sock: zmq.Socket, server_public: str | None = None) -> None:
        if self.curve:
            sock.curve_serverkey = (server_public or self.curve["server_public"]).encode()
            sock.curve_publickey = self.curve["public"].encode()
            sock.curve_secretkey = self.curve["secret"].encode()

    def _socket(self) -> zmq.Socket:
        if self.sock is None:
            sock = self.ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            self._secure(sock)
            sock.connect(self.endpoint)
            self.sock = sock
        return self.sock

    def _reset(self) -> None:
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None

    def close(self) -> None:
        self._reset()

    def __enter__(self) -> Client:  # noqa: PYI034 (typing.Self needs 3.11)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, msg_type: str, body: dict | None = None, timeout: float | None = None) -> Any:
        timeout = self.timeout if timeout is None else timeout
        attempts = self.retries if msg_type in IDEMPOTENT else 1
        backoff = P.BACKOFF_START_S
        for attempt in range(attempts):
            request_id = P.new_id()
            sock = self._socket()
            sock.send_multipart(self.session.request(msg_type, body or {}, request_id))
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not sock.poll(int(left * 1000)):
                    break
                try:
                    reply = self.session.unpack(sock.recv_multipart())
                except P.ProtocolError as err:
                    raise RequestFailed(f"bad reply from ftd: {err}", err.code) from None
                if reply.header.get("re") not in (request_id, None):
                    continue  # a late reply to an earlier, timed-out request
                if not reply.header.get("ok"):
                    error = reply.body.get("error") if isinstance(reply.body, dict) else str(reply.body)
                    raise RequestFailed(error or "request failed", reply.header.get("code", "error"))
                return reply.body
            self._reset()
            if attempt + 1 < attempts:
                self.say(f"ftd at {self.endpoint} did not answer in {timeout:.0f}s; reconnecting in {backoff:.1f}s")
                time.sleep(backoff)
                backoff = min(backoff * 2, P.BACKOFF_MAX_S)
        raise DaemonUnavailable(f"ftd at {self.endpoint} did not answer; {START_HINT}")

    def hello(self) -> dict:
        self.hello_info = self.request(P.HELLO)
        return self.hello_info

    def subscribe(self, topics: list[str] | None = None) -> Subscription:
        info = self.hello_info or self.hello()
        return Subscription(self, info["events"], topics or [""])


class Subscription:
    """A SUB socket on the caller's event stream with sequence checking and heartbeat liveness."""

    def __init__(self, client: Client, endpoint: str, topics: list[str]):
        self.client, self.endpoint, self.topics = client, endpoint, topics
        self.last_seq: int | None = None
        self.gaps = 0
        self.sock: zmq.Socket | None = None
        self.last_heard = time.monotonic()
        self._connect()

    def _connect(self) -> None:
        sock = self.client.ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 200000)
        self.client._secure(sock)
        for topic in self.topics:
            sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
        if self.topics != [""]:
            sock.setsockopt(zmq.SUBSCRIBE, P.EV_HEARTBEAT.encode())
        sock.connect(self.endpoint)
        self.sock = sock
        self.last_heard = time.monotonic()

    def reconnect(self) -> None:
        if self.sock is not None:
            self.sock.close(0)
        self.last_seq = None
        self._connect()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None

    @property
    def silent(self) -> bool:
        return time.monotonic() - self.last_heard > P.HEARTBEAT_S * P.HEARTBEAT_LIVENESS

    def recv(self, timeout: float) -> tuple[P.Message | None, bool]:
        """(next event or None on timeout, whether events were lost before it)."""
        if not self.sock.poll(int(timeout * 1000)):
            return None, False
        _topic, message = self.client.session.unpack_event(self.sock.recv_multipart())
        self.last_heard = time.monotonic()
        # sequence numbers count every event on the stream: gaps mean loss only for a full subscription
        lost = (self.topics == [""] and self.last_seq is not None and message.seq is not None
                and message.seq > self.last_seq + 1)
        if lost:
            self.gaps += message.seq - self.last_seq - 1
        if message.seq is not None:
            self.last_seq = message.seq
        return message, lost


# ── high-level helpers (ftctl, the demo) ───────────────────────────────────────────────────────
def connect(endpoint: str | None = None, timeout: float = 10.0) -> Client:
    return Client(endpoint, timeout=timeout)


def profile_payload(path: str | Path, sets: list[str] | None = None, cwd: str | Path | None = None) -> dict:
    """Validate a profile here (every problem at once) and make its paths absolute for ftd."""
    from ftlab.engine.config import load_profile, resolve_paths

    loaded = load_profile(path, sets or [])
    profile = resolve_paths(loaded.profile, cwd or os.getcwd())
    return {"profile": profile.model_dump(mode="json"), "source": str(path)}


def submit_file(client: Client, path: str | Path, sets: list[str] | None = None, *, gpus: int | None = None,
                priority: int = 0, name: str | None = None, min_vram_gib: float | None = None) -> int:
    body = profile_payload(path, sets)
    body.update(gpus=gpus, priority=priority, name=name or Path(path).stem, min_vram_gib=min_vram_gib)
    return int(client.request(P.SUBMIT, body)["id"])


def wait(client: Client, job_id: int, out: TextIO | None = None, poll_s: float = 0.5) -> dict:
    """Follow a job until it ends, writing its log to `out` (if given); returns the final record."""
    offset = 0

    def fetch_to(end: int | None = None) -> None:
        nonlocal offset
        while True:
            chunk = client.request(P.LOGS, {"id": job_id, "offset": offset})
            if chunk["data"] and out is not None:
                out.write(chunk["data"])
                out.flush()
            offset = chunk["end"]
            if chunk["end"] >= chunk["size"] or (end is not None and offset >= end):
                return

    info = client.hello_info or client.hello()
    sub = client.subscribe([f"job.{job_id}"]) if info.get("job_events") else None
    try:
        if sub is not None:
            time.sleep(0.05)  # let the subscription reach ftd before taking the snapshot
        fetch_to()
        job = client.request(P.SHOW, {"id": job_id})
        while job["state"] not in TERMINAL_STATES:
            if sub is None:
                time.sleep(poll_s)
                fetch_to()
                job = client.request(P.SHOW, {"id": job_id})
                continue
            message, lost = sub.recv(timeout=poll_s)
            if message is None:
                if sub.silent:
                    client.say("no heartbeat from ftd; reconnecting the event stream")
                    sub.reconnect()
                    fetch_to()
                    job = client.request(P.SHOW, {"id": job_id})
                continue
            kind, body = message.header.get("kind"), message.body
            if lost:
                fetch_to()
            if kind == P.EV_LOG and body.get("job") == job_id:
                if body["offset"] == offset:
                    if out is not None:
                        out.write("".join(line + "\n" for line in body["lines"]))
                        out.flush()
                    offset = body["end"]
                elif body["end"] > offset:  # a gap, or a line we read half of: ask for the bytes
                    fetch_to()
            elif kind == P.EV_JOB and body.get("id") == job_id:
                job = body
        fetch_to()
        return client.request(P.SHOW, {"id": job_id})
    finally:
        if sub is not None:
            sub.close()


class DaemonProcess:
    """A user-mode ftd started as a child (`start_daemon`); `stop()` ends it (jobs keep running)."""

    def __init__(self, process: subprocess.Popen, endpoint: str, state_dir: Path):
        self.process, self.endpoint, self.state_dir = process, endpoint, state_dir

    def client(self, timeout: float = 10.0) -> Client:
        return Client(self.endpoint, timeout=timeout)

    def stop(self, timeout: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextlib.contextmanager
def scratch_daemon(state_dir: str | Path, log_file: str | Path | None = None):
    """A private user-mode ftd for one script (`make demo`): yields the running `DaemonProcess`
    (its `.endpoint` goes into FTLAB_ENDPOINT for ftctl) and stops it at the end.

        with client.scratch_daemon("out/ftd") as ftd:
            env = {**os.environ, "FTLAB_ENDPOINT": ftd.endpoint}
            subprocess.run(["ftctl", "submit", "profiles/demo_lora_sft.yaml", "--wait"], env=env)
    """
    state_dir = Path(state_dir).resolve()
    runtime = paths.ensure_private_dir(paths.user_runtime_dir())
    endpoint = f"ipc://{runtime / f'ftd-{os.getpid()}.sock'}"
    daemon = start_daemon(state_dir=state_dir, endpoint=endpoint,
                          log_file=log_file or state_dir.parent / f"{state_dir.name}.log")
    try:
        yield daemon
    finally:
        daemon.stop()


def start_daemon(state_dir: str | Path | None = None, endpoint: str | None = None, extra_args: list[str] | None = None,
                 env: dict[str, str] | None = None, log_file: str | Path | None = None,
                 timeout: float = 20.0) -> DaemonProcess:
    """Start `ftd --foreground` as a child process and wait until it answers `ping`."""
    from .main import default_dirs

    default_state, runtime = default_dirs()
    state_dir = Path(state_dir or default_state)
    endpoint = endpoint or f"ipc://{runtime / 'ftd.sock'}"
    cmd = [sys.executable, "-m", "ftlab.daemon.main", "--foreground", "--state-dir", str(state_dir),
           "--endpoint", endpoint, *(extra_args or [])]
    output = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115 (closed below)
    process = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=output, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    if log_file:
        output.close()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise DaemonUnavailable(f"ftd exited at start with code {process.returncode}"
                                        + (f" (see {log_file})" if log_file else ""))
            try:
                with Client(endpoint, timeout=0.5, retries=1) as probe:
                    probe.request(P.PING)
                return DaemonProcess(process, endpoint, state_dir)
            except DaemonUnavailable:
                time.sleep(0.1)
        raise DaemonUnavailable(f"ftd did not answer within {timeout:.0f}s at {endpoint}")
    except BaseException:  # never leave a daemon behind that nobody will stop
        if process.poll() is None:
            process.kill()
            process.wait()
        raise
