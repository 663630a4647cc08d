"""ftui's connection to ftd: requests, the event stream, heartbeats, reconnects and resyncs.

One `Link` lives in the app's asyncio loop (Textual runs on asyncio, so `zmq.asyncio` fits):

* requests go out on a DEALER socket and `await link.call(type, body)` returns the reply body
  (a failed request raises `RemoteError` with ftd's message; no answer raises `LinkDown`);
* `hello` tells which event stream (PUB) to subscribe to; the link subscribes first, then takes
  a `snapshot` (jobs + devices + sequence number), buffering events meanwhile, and hands the
  snapshot and then only the newer buffered events to the app (zguide Clone pattern);
* ftd publishes a heartbeat every second; hearing nothing for `HEARTBEAT_LIVENESS` intervals
  means ftd is gone: the link says so, reconnects with capped exponential backoff and resyncs;
  a different daemon pid after reconnecting means ftd restarted;
* the app calls `resync()` when it sees a sequence gap.

Endpoints: `FTLAB_ENDPOINT` if set, else the user socket, else the system socket (DESIGN.md);
the session key is the file next to the socket (`ftd.sock` → `ftd.key`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
from ftlab.daemon import client
from ftlab.daemon import protocol as P


class LinkDown(Exception):
    """ftd did not answer (not running, restarting, or the socket is gone)."""


class RemoteError(Exception):
    """ftd answered with an error; `str()` is its message, `code` its reason."""

    def __init__(self, message: str, code: str = "error"):
        super().__init__(message)
        self.code = code


def default_endpoint() -> str:
    """Where ftctl looks (`ftlab.daemon.client.find_endpoint`); the user socket when none exists
    yet, so ftui waits for an ftd that is about to start."""
    try:
        return client.find_endpoint()
    except client.DaemonUnavailable:
        return client.user_endpoint()


def key_path(endpoint: str) -> Path:
    return Path(endpoint[len("ipc://"):]).with_suffix(".key")


@dataclass
class Status:
    """What the link tells the app about the connection."""

    state: str  # "connecting", "up", "down"
    detail: str = ""
    hello: dict | None = None
    restarted: bool = False


class Link:
    def __init__(self, endpoint: str | None = None,
                 on_status: Callable[[Status], Any] = lambda s: None,
                 on_snapshot: Callable[[dict], Any] = lambda b: None,
                 on_event: Callable[[str, str, int | None, Any], Any] = lambda *a: None,
                 request_timeout: float = 10.0):
        self.endpoint = endpoint or default_endpoint()
        self.on_status, self.on_snapshot, self.on_event = on_status, on_snapshot, on_event
        self.request_timeout = request_timeout
        self.ctx = zmq.asyncio.Context.instance()
        self.session: P.Session | None = None
        self.dealer: zmq.asyncio.Socket | None = None
        self.sub: zmq.asyncio.Socket | None = None
        self.hello: dict | None = None
        self.daemon_pid: int | None = None
        self.connected = False
        self._pending: dict[str, asyncio.Future] = {}
        self._last_heard = 0.0
        self._syncing = False
        self._buffer: list[tuple[str, str, int | None, Any]] = []
        self._resync_wanted = asyncio.Event()
        self._closed = False

    # ── requests ───────────────────────────────────────────────────────────────────────────────
    async def call(self, msg_type: str, body: dict | None = None, timeout: float | None = None) -> Any:
        if self.dealer is None or self.session is None:
            raise LinkDown("not connected to ftd")
        request_id = P.new_id()
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self.dealer.send_multipart(self.session.request(msg_type, body or {}, request_id))
            return await asyncio.wait_for(future, timeout or self.request_timeout)
        except asyncio.TimeoutError:
            raise LinkDown(f"ftd did not answer {msg_type!r}") from None
        finally:
            self._pending.pop(request_id, None)

    async def _read_replies(self, dealer: zmq.asyncio.Socket) -> None:
        while True:
            frames = await dealer.recv_multipart()
            try:
                message = self.session.unpack(frames)
            except P.ProtocolError:
                continue
            self._last_heard = time.monotonic()
            future = self._pending.get(message.header.get("re"))
            if future is None or future.done():
                continue
            if message.header.get("ok", True):
                future.set_result(message.body)
            else:
                body = message.body if isinstance(message.body, dict) else {}
                future.set_exception(RemoteError(str(body.get("error", "request failed")),
                                                 message.header.get("code", "error")))

    # ── events ─────────────────────────────────────────────────────────────────────────────────
    async def _read_events(self, sub: zmq.asyncio.Socket) -> None:
        while True:
            frames = await sub.recv_multipart()
            try:
                topic, message = self.session.unpack_event(frames)
            except P.ProtocolError:
                continue
            self._last_heard = time.monotonic()
            kind = message.header.get("kind", "")
            if kind == P.EV_HEARTBEAT and isinstance(message.body, dict):
                pid = message.body.get("pid")
                if self.daemon_pid is not None and pid is not None and pid != self.daemon_pid:
                    raise ConnectionResetError("ftd restarted")
            item = (topic, kind, message.seq, message.body)
            if self._syncing:
                self._buffer.append(item)
            else:
                await _maybe_await(self.on_event(*item))

    async def _snapshot(self) -> None:
        self._syncing, self._buffer = True, []
        try:
            body = await self.call(P.SNAPSHOT, {"all": True, "limit": 0})  # limit 0: every job
            await _maybe_await(self.on_snapshot(body))
            seq = int(body.get("seq", 0))
            for item in self._buffer:
                if item[2] is None or item[2] > seq:
                    await _maybe_await(self.on_event(*item))
        finally:
            self._syncing, self._buffer = False, []

    def resync(self) -> None:
        """Ask for a fresh snapshot (after a sequence gap)."""
        self._resync_wanted.set()

    # ── connection loop ────────────────────────────────────────────────────────────────────────
    def _close_sockets(self) -> None:
        for sock in (self.dealer, self.sub):
            if sock is not None:
                sock.close(0)
        self.dealer = self.sub = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(LinkDown("connection to ftd lost"))
        self._pending.clear()

    async def _session(self) -> None:
        """One connection: hello, subscribe, snapshot, then watch heartbeats until it fails."""
        if self.endpoint.startswith("ipc://"):
            path = Path(self.endpoint[len("ipc://"):])
            if not path.exists():
                raise LinkDown(f"no ftd socket at {path}; {client.START_HINT}")
            self.session = P.Session(key_path(self.endpoint).read_text().strip().encode())
        else:
            raise LinkDown("ftui connects over the local socket (ipc://); use ftctl for TCP endpoints")
        self.dealer = self.ctx.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.dealer.connect(self.endpoint)
        tasks = [asyncio.create_task(self._read_replies(self.dealer))]
        try:
            hello = await self.call(P.HELLO, {}, timeout=3.0)
            restarted = self.daemon_pid is not None and hello.get("pid") != self.daemon_pid
            self.hello, self.daemon_pid = hello, hello.get("pid")
            self.sub = self.ctx.socket(zmq.SUB)
            self.sub.setsockopt(zmq.LINGER, 0)
            self.sub.setsockopt(zmq.SUBSCRIBE, b"")
            self.sub.connect(hello["events"])
            tasks.append(asyncio.create_task(self._read_events(self.sub)))
            await asyncio.sleep(0.05)  # let the subscription reach the PUB before the snapshot
            await self._snapshot()
            self.connected = True
            await _maybe_await(self.on_status(Status("up", hello=hello, restarted=restarted)))
            liveness = P.HEARTBEAT_S * P.HEARTBEAT_LIVENESS
            self._last_heard = time.monotonic()
            while True:
                waiter = asyncio.create_task(self._resync_wanted.wait())
                done, _ = await asyncio.wait(tasks + [waiter], timeout=P.HEARTBEAT_S,
                                             return_when=asyncio.FIRST_COMPLETED)
                if waiter in done:
                    self._resync_wanted.clear()
                    await self._snapshot()
                else:
                    waiter.cancel()
                for task in tasks:
                    if task.done():
                        task.result()  # re-raise what ended it
                if time.monotonic() - self._last_heard > liveness:
                    raise LinkDown(f"no heartbeat from ftd for {liveness:.0f} s")
                try:
                    await self.call(P.PING, {}, timeout=liveness)
                except LinkDown:
                    raise LinkDown(f"no answer from ftd for {liveness:.0f} s") from None
        finally:
            self.connected = False
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._close_sockets()

    async def run(self) -> None:
        """Stay connected for the app's lifetime (run it as a worker)."""
        backoff = P.BACKOFF_START_S
        while not self._closed:
            await _maybe_await(self.on_status(Status("connecting", self.endpoint)))
            started = time.monotonic()
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except (LinkDown, RemoteError, OSError, zmq.ZMQError, KeyError, ValueError) as err:
                await _maybe_await(self.on_status(Status("down", str(err) or type(err).__name__)))
            if time.monotonic() - started > 5:
                backoff = P.BACKOFF_START_S
            await asyncio.sleep(backoff)
            backoff = min(P.BACKOFF_MAX_S, backoff * 2)

    def close(self) -> None:
        self._closed = True
        self._close_sockets()


async def _maybe_await(value: Any) -> None:
    if isinstance(value, Awaitable):
        await value
