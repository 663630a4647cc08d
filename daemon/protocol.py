"""The ftd wire protocol: frames, message types and the one `Session` that packs, signs and unpacks.

Two ZeroMQ sockets per endpoint family (zguide "Clone" pattern):

* requests — the client's DEALER talks to ftd's ROUTER; every request carries an id that
  its reply repeats, so a client may pipeline and match replies;
* events — ftd's PUB publishes job state changes, log lines, metrics, device telemetry and
  heartbeats; every event carries the stream's sequence number. A client subscribes first,
  then asks for a `snapshot` (which returns the stream's current sequence number), and applies
  only events newer than the snapshot; a jump in the sequence means updates were lost, and the
  client takes a new snapshot.

Frames (each box is one ZeroMQ frame; the ROUTER adds/strips the peer identity itself)::

    request  DEALER ──▶ ROUTER          reply  ROUTER ──▶ DEALER         event  PUB ──▶ SUB
    ┌───────────────────────┐           ┌──────────────────────┐         ┌──────────────────────┐
    │ b"FTLAB/1"   version  │           │ b"FTLAB/1"           │         │ topic  b"job.12"…    │
    │ signature    hex HMAC │           │ signature            │         │ b"FTLAB/1"           │
    │ header       JSON     │ {"type": "jobs", "id": "7f…", "ts"}│         │ signature            │
    │ body         JSON     │           │ header {"type":"reply"│         │ header {"type":"event",│
    └───────────────────────┘           │   "re": "7f…", "ok"} │         │   "kind","seq","ts"} │
                                        │ body   JSON          │         │ body   JSON          │
                                        └──────────────────────┘         └──────────────────────┘

The signature is HMAC-SHA256 over version, header and body with the daemon's session key (a
file next to the socket). It guards against frames from another protocol or a half-written
message — it is an integrity check, not identity: ftd learns *who* sent a request from the
kernel (SO_PEERCRED over the Unix socket) or from the CURVE key (over TCP), never from the
message; see `ftlab.daemon.auth`.

Heartbeats both ways: clients that stay connected send `ping` every `HEARTBEAT_S`; ftd publishes
a `heartbeat` event on every stream every `HEARTBEAT_S` and forgets clients silent for
`HEARTBEAT_LIVENESS` intervals; a client that hears nothing for as long reconnects with capped
exponential backoff (`BACKOFF_*`) and says so.

Anything malformed — garbage, a wrong version, an oversize message, a bad signature, an unknown
type — raises `ProtocolError`; ftd answers it with an `error` reply when it can, else drops it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

VERSION = b"FTLAB/1"
MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # also set as ZMQ_MAXMSGSIZE on ftd's sockets
HEARTBEAT_S = 1.0
HEARTBEAT_LIVENESS = 3
BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 5.0

# Request types (client → ftd).
HELLO = "hello"          # who am I, which event endpoint is mine, protocol and daemon versions
PING = "ping"            # heartbeat / liveness
SUBMIT = "submit"        # queue a job from a validated profile
JOBS = "jobs"            # list jobs
SHOW = "show"            # one job in detail
LOGS = "logs"            # a byte range of a job's log.txt
METRICS = "metrics"      # a job's metrics.jsonl records
CANCEL = "cancel"        # stop a queued or running job
RESUME = "resume"        # queue a stopped job again, resuming from its last checkpoint
DEVICES = "devices"      # devices, their telemetry and holders
SNAPSHOT = "snapshot"    # jobs + devices + the caller's event-stream sequence number
REGISTER_KEY = "register_key"  # authorise a CURVE public key for TCP access (Unix socket only)
CHAT = "chat"            # send messages to a serve job's model; the answer streams as `chat` events
REQUEST_TYPES = frozenset({HELLO, PING, SUBMIT, JOBS, SHOW, LOGS, METRICS, CANCEL, RESUME, DEVICES,
                           SNAPSHOT, REGISTER_KEY, CHAT})

# Reply and event types (ftd → client).
REPLY = "reply"
EVENT = "event"

# Event kinds (header["kind"]); the topic is "job.<id>" for job events, else the kind.
EV_JOB = "job"            # a job changed state (body: the job record)
EV_LOG = "log"            # new log lines (body: job, offset, end, lines)
EV_METRICS = "metrics"    # new metrics.jsonl records (body: job, records)
EV_DEVICES = "devices"    # telemetry, every second (body: devices, host)
EV_HEARTBEAT = "heartbeat"
EV_CHAT = "chat"          # a piece of a serve job's answer (body: job, chat, delta | done; see daemon/serve.py)


class ProtocolError(Exception):
    """A frame set that is not a valid message; `code` is a short machine-readable reason."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class Message:
    """One unpacked message: its type, id (requests/replies), header and JSON body."""

    type: str
    body: Any
    header: dict = field(default_factory=dict)

    @property
    def id(self) -> str | None:
        return self.header.get("id")

    @property
    def seq(self) -> int | None:
        return self.header.get("seq")


class RawJSON(bytes):
    """A body that is already JSON text, sent as is (ftd's job listing comes straight out of SQLite)."""


def new_id() -> str:
    return uuid.uuid4().hex[:16]


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class Session:
    """Packs, signs, verifies and unpacks ftd messages; the same object serves both ends."""

    def __init__(self, key: bytes):
        if not key:
            raise ValueError("a session key is required")
        self.key = key

    @staticmethod
    def new_key() -> bytes:
        return os.urandom(32).hex().encode()

    def sign(self, header: bytes, body: bytes) -> bytes:
        mac = hmac.new(self.key, VERSION, hashlib.sha256)
        mac.update(header)
        mac.update(body)
        return mac.hexdigest().encode()

    def _frames(self, header: dict, body: Any) -> list[bytes]:
        header_b = _dumps(header)
        body_b = bytes(body) if isinstance(body, RawJSON) else _dumps(body)
        return [VERSION, self.sign(header_b, body_b), header_b, body_b]

    def request(self, msg_type: str, body: Any = None, request_id: str | None = None) -> list[bytes]:
        header = {"type": msg_type, "id": request_id or new_id(), "ts": time.time()}
        return self._frames(header, body if body is not None else {})

    def reply(self, request_id: str | None, body: Any, ok: bool = True, code: str | None = None) -> list[bytes]:
        header = {"type": REPLY, "id": new_id(), "re": request_id, "ok": ok, "ts": time.time()}
        if code:
            header["code"] = code
        return self._frames(header, body)

    def error(self, request_id: str | None, message: str, code: str = "error") -> list[bytes]:
        return self.reply(request_id, {"error": message}, ok=False, code=code)

    def event(self, topic: str, kind: str, seq: int, body: Any) -> list[bytes]:
        header = {"type": EVENT, "kind": kind, "seq": seq, "ts": time.time()}
        return [topic.encode()] + self._frames(header, body)

    def unpack(self, frames: list[bytes]) -> Message:
        """Verify and decode [version, signature, header, body]; raises `ProtocolError`."""
        if len(frames) != 4:
            raise ProtocolError("frames", f"expected 4 frames, got {len(frames)}")
        version, signature, header_b, body_b = (bytes(f) for f in frames)
        if sum(len(f) for f in (version, signature, header_b, body_b)) > MAX_MESSAGE_BYTES:
            raise ProtocolError("oversize", f"message larger than {MAX_MESSAGE_BYTES} bytes")
        if version != VERSION:
            raise ProtocolError("version", f"protocol version {version[:32]!r} is not {VERSION!r}; "
                                           "update ftctl/ftui or ftd so both match")
        if not hmac.compare_digest(signature, self.sign(header_b, body_b)):
            raise ProtocolError("signature", "bad message signature (wrong session key?)")
        try:
            header = json.loads(header_b)
            body = json.loads(body_b)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ProtocolError("json", f"undecodable message: {err}") from None
        if not isinstance(header, dict) or not isinstance(header.get("type"), str):
            raise ProtocolError("header", "message header must be an object with a string 'type'")
        return Message(type=header["type"], body=body, header=header)

    def unpack_event(self, frames: list[bytes]) -> tuple[str, Message]:
        if len(frames) != 5:
            raise ProtocolError("frames", f"expected 5 event frames, got {len(frames)}")
        return bytes(frames[0]).decode(errors="replace"), self.unpack(frames[1:])
