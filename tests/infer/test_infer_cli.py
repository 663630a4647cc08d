"""`ftctl chat --message` (one-shot, greedy) and `ftctl serve` as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow


def test_chat_one_shot_prints_only_the_greedy_answer(capsys, smol_engine):
    from ftlab.engine.infer.chatfmt import render_chat
    from ftlab.engine.infer.hf_engine import wait_all
    from ftlab.engine.infer.params import SamplingParams

    from ftlab.cli.main import main

    assert main(["chat", "smollm2-135m-instruct", "--message", "Who are you?", "--max-tokens", "12"]) == 0
    printed = capsys.readouterr().out
    prompt = render_chat(smol_engine.tokenizer, [{"role": "user", "content": "Who are you?"}])
    ids = smol_engine.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    expected = wait_all(smol_engine, ids, SamplingParams(max_tokens=12))[0]["text"]
    assert printed == expected + "\n"
    assert main(["chat", "smollm2-135m-instruct", "-m", "Who are you?", "--max-tokens", "12", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["answer"] == expected and data["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 12


def test_serve_process_answers_and_stops_on_sigterm(tmp_path, smollm2_dir):
    from openai import OpenAI

    ready = tmp_path / "ready.json"
    proc = subprocess.Popen([sys.executable, "-m", "ftlab.cli", "serve", "smollm2-135m-instruct", "--port", "0",
                             "--ready-file", str(ready), "--served-model-name", "smol", "--max-batch", "4"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 90
        while not ready.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)
        info = json.loads(ready.read_text())
        assert info["url"].startswith("http://127.0.0.1:") and info["model"] == "smol"
        client = OpenAI(base_url=info["url"], api_key="x", max_retries=0, timeout=60)
        answer = client.chat.completions.create(model="smol", messages=[{"role": "user", "content": "Hi"}],
                                                max_tokens=4, temperature=0)
        assert answer.choices[0].message.content
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
