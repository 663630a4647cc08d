"""Serve jobs through a real ftd: submit, chat over the protocol (streamed events), cancel."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def ftd(ftlab_home, monkeypatch):
    from ftlab.daemon import client

    short = Path(tempfile.mkdtemp(prefix="ftd-", dir="/tmp"))  # Unix socket paths are short
    endpoint = f"ipc://{short}/ftd.sock"
    daemon = client.start_daemon(state_dir=short / "state", endpoint=endpoint, log_file=short / "ftd.log")
    monkeypatch.setenv("FTLAB_ENDPOINT", endpoint)
    yield daemon
    daemon.stop()
    shutil.rmtree(short, ignore_errors=True)


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_serve_job_chat_and_cancel(ftd, capsys, smol_engine):
    from ftlab.daemon import protocol as P
    from ftlab.daemon import serve
    from ftlab.daemon.client import RequestFailed
    from ftlab.engine.infer.chatfmt import render_chat
    from ftlab.engine.infer.hf_engine import wait_all
    from ftlab.engine.infer.params import SamplingParams

    from ftlab.cli.main import main

    assert main(["serve", "smollm2-135m-instruct", "--submit", "--json", "--max-batch", "2"]) == 0
    job_id = json.loads(capsys.readouterr().out)["id"]
    with ftd.client() as client:
        def listening():
            job = client.request(P.SHOW, {"id": job_id})
            assert job["state"] in ("queued", "starting", "running"), job
            return job if serve.endpoint(Path(job["job_dir"])) else None

        job = _wait(listening, 120, "the serve job to listen")
        assert job["stage"] == "serve" and job["state"] == "running"
        key_file = Path(job["job_dir"]) / serve.KEY_FILE
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        # the job's HTTP API is locked with the job's key
        import urllib.error
        import urllib.request

        info = serve.endpoint(Path(job["job_dir"]))
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(info["url"] + "/models", timeout=10)
        assert err.value.code == 401

        # chat over the protocol: the same greedy answer as the model loaded here
        assert main(["chat", str(job_id), "--message", "Who are you?", "--max-tokens", "12"]) == 0
        printed = capsys.readouterr().out
        prompt = render_chat(smol_engine.tokenizer, [{"role": "user", "content": "Who are you?"}])
        ids = smol_engine.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        assert printed == wait_all(smol_engine, ids, SamplingParams(max_tokens=12))[0]["text"] + "\n"
        pieces = list(serve.chat(client, job_id, [{"role": "user", "content": "Say hi."}], max_tokens=8,
                                 temperature=0))
        assert len(pieces) > 1  # streamed as several events
        with pytest.raises(RequestFailed, match="messages"):
            list(serve.chat(client, job_id, []))
        # by model name (ftui's chat): ftd finds this user's serve job holding it
        reply = client.request(P.CHAT, {"model": "smollm2-135m-instruct", "adapter": None,
                                        "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2})
        assert reply["job"] == job_id and reply["stream"] == reply["chat"]

        client.request(P.CANCEL, {"id": job_id})
        job = _wait(lambda: (j := client.request(P.SHOW, {"id": job_id}))["state"] in ("cancelled", "failed",
                                                                                       "succeeded") and j,
                    30, "the serve job to stop")
        assert job["state"] == "cancelled" and job["devices_held"] == []
        assert not _alive(job["pid"])
        assert "Traceback" not in (Path(job["job_dir"]) / "log.txt").read_text()
    capsys.readouterr()
    assert main(["chat", str(job_id), "--message", "hello?"]) == 2
    assert f"job {job_id} is cancelled" in capsys.readouterr().err


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
