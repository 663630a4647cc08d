"""Serve jobs: a model held by `ftctl serve` as a long-running ftd job, and chat relayed to it.

A serve job is submitted with `{"serve": {"model": ..., "adapter": ...}}` instead of a profile
(`ftctl serve MODEL --submit`). Its process is `python -m ftlab.cli serve MODEL --port 0
--ready-file <jobdir>/serve.json` on the granted device, bound to 127.0.0.1 and locked with a
random API key kept in `<jobdir>/serve.key` (mode 0600, owned by the job's user), so other users
of the machine cannot use the model. Cancel is the ordinary job cancel: SIGTERM stops the server
and the scheduler frees the device.

Chat over the protocol (what ftui's chat and `ftctl chat JOB` use): a `chat` request names the job
(`id`), or the `model` (+ `adapter`) to talk to — ftd then uses the caller's serve job holding it,
or starts one — and carries OpenAI-style `messages` (+ max_tokens, temperature, top_p, seed, stop).
ftd answers at once with `{"chat": ID, "stream": ID, "job": N}`, sends the request to the job's
HTTP API in a thread (once it listens), and publishes each piece of text as a `chat` event on the
job's topic (`stream` repeats the chat id):

    {"job": 12, "chat": "ab12…", "stream": "ab12…", "delta": "Hel"}            (repeated)
    {"job": 12, "chat": "ab12…", "stream": "ab12…", "done": true, "finish_reason": "stop", "error": null}

Everything here is torch-free (stdlib HTTP): it runs inside ftd.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import safe_io

STAGE = "serve"
KEY_FILE = "serve.key"
READY_FILE = "serve.json"
_SERVE_KEYS = {"model", "adapter", "backend", "max_batch", "max_len", "dtype"}
_CHAT_KEYS = {"max_tokens": int, "temperature": (int, float), "top_p": (int, float), "seed": int}


# ── submit side ──────────────────────────────────────────────────────────────────────────────
def job_profile(spec: Any) -> dict:
    """The stored 'profile' of a serve job from the submitted spec; ValueError names a bad key."""
    if not isinstance(spec, dict):
        raise ValueError("serve: expected a mapping with at least 'model'")  # noqa: TRY004
    unknown = sorted(set(spec) - _SERVE_KEYS)
    if unknown:
        raise ValueError(f"serve: unknown key {unknown[0]!r}; expected one of {', '.join(sorted(_SERVE_KEYS))}")
    model = spec.get("model")
    if not isinstance(model, str) or not model:
        raise ValueError("serve.model: expected a model name or folder")
    adapter = spec.get("adapter")
    if adapter is not None and not isinstance(adapter, str):
        raise ValueError("serve.adapter: expected a folder path")
    backend = spec.get("backend", "hf")
    if backend not in ("hf", "vllm"):
        raise ValueError("serve.backend: expected 'hf' or 'vllm'")
    for key in ("max_batch", "max_len"):
        if spec.get(key) is not None and (not isinstance(spec[key], int) or spec[key] < 1):
            raise ValueError(f"serve.{key}: expected a positive integer")
    dtype = spec.get("dtype", "auto")
    if not isinstance(dtype, str):
        raise ValueError("serve.dtype: expected auto, bf16, fp16 or fp32")  # noqa: TRY004
    return {"stage": STAGE, "model": {"name_or_path": model, "adapter": adapter},
            "serve": {"backend": backend, "max_batch": spec.get("max_batch") or 16,
                      "max_len": spec.get("max_len"), "dtype": dtype}}


def command(python: str, job) -> list[str]:
    """The serve job's process."""
    job_dir = Path(job.job_dir)
    model, serve = job.profile.get("model", {}), job.profile.get("serve", {})
    cmd = [python, "-m", "ftlab.cli", "serve", model["name_or_path"], "--host", "127.0.0.1", "--port", "0",
           "--ready-file", str(job_dir / READY_FILE), "--served-model-name", f"job-{job.id}",
           "--backend", serve.get("backend", "hf"), "--max-batch", str(serve.get("max_batch") or 16),
           "--dtype", serve.get("dtype") or "auto"]
    if model.get("adapter"):
        cmd += ["--adapter", model["adapter"]]
    if serve.get("max_len"):
        cmd += ["--max-len", str(serve["max_len"])]
    return cmd


def write_key(job_dir: Path) -> Path:
    """A fresh API key for the job's server (0600); the runner hands it over as $FTLAB_API_KEY."""
    path = job_dir / KEY_FILE
    # the job's user owns job_dir: a fresh O_EXCL temp name, never a planted link (daemon/safe_io.py)
    safe_io.write_atomic(path, secrets.token_hex(24), mode=0o600)
    return path


def api_key(job_dir: Path) -> str | None:
    try:
        return safe_io.read_bytes(job_dir / KEY_FILE, size=4096).decode().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def endpoint(job_dir: Path) -> dict | None:
    """{url, port, model, ...} once the job's server listens (and after it was (re)started)."""
    try:
        info = json.loads(safe_io.read_bytes(job_dir / READY_FILE, size=1 << 16))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and isinstance(info.get("url"), str) else None


# ── chat relay (inside ftd) ──────────────────────────────────────────────────────────────────
def chat_request(body: dict, model: str) -> dict:
    """The OpenAI request for a protocol `chat` body; ValueError names a bad field."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("chat needs messages: a non-empty list of {role, content}")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) \
                or not isinstance(message.get("content"), str):
            raise ValueError(f"messages[{i}]: expected {{'role': str, 'content': str}}")  # noqa: TRY004
    request: dict = {"model": model, "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
                     "stream": True}
    for key, kind in _CHAT_KEYS.items():
        if body.get(key) is not None:
            if not isinstance(body[key], kind) or isinstance(body[key], bool):
                raise ValueError(f"chat {key}: expected a number")
            request[key] = body[key]
    stop = body.get("stop")
    if stop is not None:
        if not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
            raise ValueError("chat stop: expected a list of strings")
        request["stop"] = stop
    return request


def relay_chat(info: dict, key: str | None, request: dict, emit: Callable[[dict], None],
               timeout: float = 600.0) -> None:
    """POST the request to the job's server and emit each text delta, then one `done` event."""
    finish, error = None, None
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    http = urllib.request.Request(info["url"].rstrip("/") + "/chat/completions", method="POST",
                                  data=json.dumps(request).encode(), headers=headers)
    try:
        with urllib.request.urlopen(http, timeout=timeout) as response:
            for raw in response:
                line = raw.decode("utf-8", errors="replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                if "error" in chunk:
                    error = chunk["error"].get("message", "the model server failed")
                    break
                for choice in chunk.get("choices", []):
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        emit({"delta": text})
                    finish = choice.get("finish_reason") or finish
    except urllib.error.HTTPError as err:
        try:
            error = json.loads(err.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            error = f"the model server answered HTTP {err.code}"
    except (OSError, ValueError) as err:
        error = f"cannot reach the job's model server: {err}"
    emit({"done": True, "finish_reason": finish, "error": error})


def relay_chat_when_ready(job_dir: Path, request: dict, emit: Callable[[dict], None],
                          wait_s: float = 300.0) -> None:
    """`relay_chat` once the job's server listens (a job just started is still loading its model)."""
    deadline = time.monotonic() + wait_s
    info = endpoint(job_dir)
    while info is None and time.monotonic() < deadline:
        time.sleep(0.2)
        info = endpoint(job_dir)
    if info is None:
        emit({"done": True, "finish_reason": None,
              "error": f"the serve job did not start listening within {wait_s:.0f} s (see its log)"})
        return
    relay_chat(info, api_key(job_dir), request, emit)


# ── client side (ftctl chat JOB, ftui) ───────────────────────────────────────────────────────
def chat(client, job_id: int, messages: list[dict], timeout: float = 600.0, **params) -> Iterator[str]:
    """Chat with serve job `job_id` through ftd: yields text pieces; raises RequestFailed on error."""
    from . import protocol as P
    from .client import RequestFailed

    info = client.hello_info or client.hello()
    if not info.get("job_events"):
        raise RequestFailed("this connection gets no job events (chat needs the local socket or CURVE)")
    sub = client.subscribe([f"job.{job_id}"])
    try:
        time.sleep(0.05)  # let the subscription reach ftd before the first event
        chat_id = client.request(P.CHAT, {"id": job_id, "messages": messages, **params})["chat"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message, _lost = sub.recv(timeout=1.0)
            if message is None or message.header.get("kind") != P.EV_CHAT:
                continue
            body = message.body
            if body.get("chat") != chat_id:
                continue
            if body.get("delta"):
                yield body["delta"]
            if body.get("done"):
                if body.get("error"):
                    raise RequestFailed(body["error"], "chat_failed")
                return
        raise RequestFailed(f"no answer from job {job_id} within {timeout:.0f} s", "timeout")
    finally:
        sub.close()
