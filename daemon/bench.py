"""Benchmark ftd: RPC round trips (ipc, tcp), the event stream under a flood of log lines, and
`ftctl jobs --json` with 10,000 jobs in the store. Results go to docs/bench/daemon.md by hand.

    python -m ftlab.daemon.bench                       # all three, prints a JSON summary
    python -m ftlab.daemon.bench --rpc 20000 --lines 1000000 --jobs 10000

The event-stream part runs a real job (the engine on the CPU: the embedded model with a very
large max_steps, cancelled at the end) and, while it runs, appends numbered lines to its log.txt
as a very chatty job would; one subscriber counts which numbered lines arrive through ftd's
tail → PUB → SUB path, in order, and how many are missing. No torch is imported here (the job
process imports it, as always).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import client
from . import protocol as P

REPO = Path(__file__).resolve().parent.parent


def _percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000
    return {"n": len(samples), "p50_ms": round(pick(0.50), 3), "p99_ms": round(pick(0.99), 3),
            "max_ms": round(ordered[-1] * 1000, 3), "mean_ms": round(statistics.fmean(ordered) * 1000, 3)}


def bench_rpc(c: client.Client, count: int) -> dict:
    for _ in range(200):  # warm up
        c.request(P.PING)
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        c.request(P.PING)
        samples.append(time.perf_counter() - start)
    return _percentiles(samples)


def bench_events(daemon: client.DaemonProcess, folder: Path, lines: int) -> dict:
    profile = folder / "chatty.yaml"
    profile.write_text("stage: sft\nmodel: {name_or_path: smollm2-135m-instruct}\nmethod: {type: lora}\n"
                       f"data: {{dataset: [identity], dataset_dir: {REPO / 'profiles' / 'data'}, cutoff_len: 64}}\n"
                       "train: {max_steps: 1000000, batch_size: 1, logging_steps: 1000}\n")
    with daemon.client() as c:
        job_id = client.submit_file(c, profile, gpus=0, name="chatty")
        job = c.request(P.SHOW, {"id": job_id})
        log_path = Path(job["job_dir"]) / "log.txt"
        sub = c.subscribe()  # everything: a sequence gap is then a lost event
        time.sleep(0.3)
        payload = "x" * 40
        chunk = 10000
        received, expected, out_of_order = 0, 0, 0
        start = time.perf_counter()
        last_arrival = start
        with open(log_path, "a", encoding="utf-8") as log:
            for base in range(0, lines, chunk):
                log.write("".join(f"BENCH {n} {payload}\n" for n in range(base, min(lines, base + chunk))))
                log.flush()
                while True:  # drain what has arrived, without blocking the writer
                    message, _ = sub.recv(timeout=0)
                    if message is None:
                        break
                    if message.header.get("kind") == P.EV_LOG and message.body["job"] == job_id:
                        for line in message.body["lines"]:
                            if line.startswith("BENCH "):
                                number = int(line.split()[1])
                                out_of_order += number != expected
                                expected = number + 1
                                received += 1
                                last_arrival = time.perf_counter()
        write_s = time.perf_counter() - start
        deadline = time.monotonic() + 30
        while received < lines and time.monotonic() < deadline:
            message, _ = sub.recv(timeout=0.5)
            if message is not None and message.header.get("kind") == P.EV_LOG and message.body["job"] == job_id:
                for line in message.body["lines"]:
                    if line.startswith("BENCH "):
                        number = int(line.split()[1])
                        out_of_order += number != expected
                        expected = number + 1
                        received += 1
                        last_arrival = time.perf_counter()
        gaps = sub.gaps
        sub.close()
        c.request(P.CANCEL, {"id": job_id})
        deadline = time.monotonic() + 60  # let it finish its warm stop: the next part needs quiet cores
        while c.request(P.SHOW, {"id": job_id})["state"] not in client.TERMINAL_STATES and time.monotonic() < deadline:
            time.sleep(0.5)
    total_s = last_arrival - start
    return {"lines": lines, "received": received, "lost": lines - received, "out_of_order": out_of_order,
            "sequence_gaps": gaps, "write_s": round(write_s, 3), "delivered_s": round(total_s, 3),
            "lines_per_s": round(received / total_s) if total_s > 0 else None}


def bench_listing(folder: Path, jobs: int, runs: int) -> dict:
    from .store import Store

    state = folder / "list-state"
    (state / "jobs").mkdir(parents=True)
    store = Store(state / "ftd.db")
    profile = {"stage": "sft", "model": {"name_or_path": "smollm2-135m-instruct"}}
    store.db.execute("BEGIN")
    for n in range(jobs):
        store.db.execute(
            "INSERT INTO jobs (name, owner_uid, owner, state, priority, gpus, stage, profile, job_dir, created, ended)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (f"job-{n}", os.getuid(), "bench", "succeeded", 0, 1, "sft", json.dumps(profile), "", time.time(), time.time()))
    store.db.execute("COMMIT")
    store.close()
    endpoint = f"ipc://{folder}/list.sock"
    daemon = client.start_daemon(state_dir=state, endpoint=endpoint)
    env = {**os.environ, "FTLAB_ENDPOINT": endpoint}
    try:
        results = {}
        for label, extra in (("all_10000", ["--limit", "0"]), ("default_limit_200", [])):
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                done = subprocess.run([sys.executable, "-m", "ftlab.cli", "jobs", "--json", *extra],
                                      capture_output=True, env=env, check=True)
                times.append(time.perf_counter() - start)
            count = len(json.loads(done.stdout))
            results[label] = {"jobs_listed": count, **{k: v for k, v in _percentiles(times).items() if k != "n"}}
        with daemon.client() as c:
            samples = []
            for _ in range(runs * 4):
                start = time.perf_counter()
                c.request(P.JOBS, {"limit": 0})
                samples.append(time.perf_counter() - start)
            results["rpc_only_all"] = _percentiles(samples)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import ftlab.cli.main"], check=True, env=env)
        results["python_startup_and_import_s"] = round(time.perf_counter() - start, 3)
    finally:
        daemon.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ftlab.daemon.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rpc", type=int, default=10000, help="round trips per transport")
    parser.add_argument("--lines", type=int, default=500000, help="log lines for the event-stream test (0: skip)")
    parser.add_argument("--jobs", type=int, default=10000, help="jobs in the store for the listing test (0: skip)")
    parser.add_argument("--runs", type=int, default=7, help="ftctl invocations per listing measurement")
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="ftdb-", dir="/tmp"))
    os.environ.setdefault("XDG_CONFIG_HOME", str(folder / "config"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tcp = f"tcp://127.0.0.1:{port}"
    ipc = f"ipc://{folder}/ftd.sock"
    report = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "python": platform.python_version(), "kernel": platform.release()},
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    daemon = client.start_daemon(state_dir=folder / "state", endpoint=ipc, extra_args=["--endpoint", tcp],
                                 log_file=folder / "ftd.log")
    try:
        with daemon.client() as c:
            report["rpc_ipc"] = bench_rpc(c, args.rpc)
        env = {**os.environ, "FTLAB_ENDPOINT": ipc}
        subprocess.run([sys.executable, "-m", "ftlab.cli", "ping", "--register-key", tcp], env=env, check=True,
                       capture_output=True)
        with client.Client(tcp) as c:
            report["rpc_tcp_curve"] = bench_rpc(c, args.rpc)
        if args.lines:
            report["events"] = bench_events(daemon, folder, args.lines)
    finally:
        daemon.stop()
    if args.jobs:
        report["listing"] = bench_listing(folder, args.jobs, args.runs)
    print(json.dumps(report, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
