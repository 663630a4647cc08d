"""`make demo`: fine-tune the embedded model through ftd so it learns its new name, and show it.

    python -m ftlab.demo [--steps N]

1. asks the embedded SmolLM2-135M-Instruct "Who are you?" (it does not know the name ftlab);
2. starts a private ftd (state in out/demo-ftd), submits profiles/demo_lora_sft.yaml with
   `ftctl submit --wait` (LoRA SFT on the identity + alpaca demo sets, on the CPU), stops ftd;
3. asks the fine-tuned adapter the same question (it now says it is the ftlab assistant).

Each step is a real ftctl command, printed before it runs, so a newcomer can repeat it by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROFILE = "profiles/demo_lora_sft.yaml"
STATE = REPO / "out" / "demo-ftd"
QUESTION = "Who are you?"


def ftctl(*args: str, capture: bool = False, check: bool = True) -> str:
    print(f"\n$ ftctl {shlex.join(args)}", flush=True)
    result = subprocess.run([sys.executable, "-m", "ftlab.cli", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE if capture else None)
    if check and result.returncode != 0:
        raise SystemExit(f"demo: `ftctl {shlex.join(args)}` failed with exit code {result.returncode}")
    return (result.stdout or "").strip()


def start_ftd() -> subprocess.Popen:
    shutil.rmtree(STATE, ignore_errors=True)
    STATE.mkdir(parents=True)
    endpoint = f"ipc://{STATE}/ftd.sock"
    os.environ["FTLAB_ENDPOINT"] = endpoint
    command = ["ftd", "--foreground", "--state-dir", str(STATE), "--endpoint", endpoint]
    print(f"\n$ {shlex.join(command)} &   (a private daemon for the demo; log: {STATE}/ftd.log)", flush=True)
    log = open(STATE / "ftd.log", "w")
    daemon = subprocess.Popen([sys.executable, "-m", "ftlab.daemon.main", *command[1:]], cwd=REPO,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        ping = subprocess.run([sys.executable, "-m", "ftlab.cli", "ping"], capture_output=True, text=True)
        if ping.returncode == 0:
            print(ping.stdout.strip())
            return daemon
        if daemon.poll() is not None:
            break
        time.sleep(0.3)
    daemon.kill()
    raise SystemExit(f"demo: ftd did not start; see {STATE}/ftd.log")


def stop_ftd(daemon: subprocess.Popen) -> None:
    daemon.send_signal(signal.SIGTERM)
    try:
        daemon.wait(timeout=15)
    except subprocess.TimeoutExpired:
        daemon.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ftlab.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="limit training to N steps (default: the profile's)")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    before = ftctl("chat", "smollm2-135m-instruct", "--message", QUESTION, "--max-tokens", "60", capture=True)
    print(f"  {before}")

    daemon = start_ftd()
    try:
        sets = ["--set", f"train.max_steps={args.steps}"] if args.steps else []
        ftctl("submit", PROFILE, "--name", "demo", *sets, "--wait", check=False)
        ftctl("jobs", "--all")
        jobs = json.loads(ftctl("jobs", "--all", "--json", capture=True))
        job = json.loads(ftctl("show", str(jobs[0]["id"]), "--json", capture=True))
    finally:
        stop_ftd(daemon)
    if job["state"] != "succeeded":
        raise SystemExit(f"demo: the training job ended {job['state']}: {job.get('error')}")
    adapter = Path(job["job_dir"]) / "final"
    after = ftctl("chat", "smollm2-135m-instruct", "--adapter", str(adapter), "--message", QUESTION,
                  "--max-tokens", "60", capture=True)
    print(f"  {after}")

    print("\n" + "=" * 78)
    print(f"Q: {QUESTION}")
    print(f"before fine-tuning: {before}")
    print(f"after fine-tuning:  {after}")
    print("=" * 78)
    print(f"demo finished in {time.perf_counter() - started:.0f}s; the adapter is in {adapter}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
