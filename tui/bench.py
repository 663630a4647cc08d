"""Benchmark ftui against a real ftd: start-up with 1,000 jobs in the store, and the time to apply
one job-update event to the jobs table. Results go to docs/bench/tui.md.

    python -m ftlab.tui.bench [--jobs 1000] [--events 50]

It fills a fresh SQLite job store with finished jobs, starts `ftd --foreground` on it, then
measures (1) `import ftlab.tui.app` in a fresh interpreter, (2) from creating the app to the jobs
table showing every job (hello, subscribe, snapshot, table fill, first render), and (3) for single
job events: the handler (model + changed cells) and the handler plus the repaint.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def fill_store(state_dir: Path, count: int) -> None:
    from ftlab.daemon.store import JobState, Store

    state_dir.mkdir(parents=True, exist_ok=True)
    store = Store(state_dir / "ftd.db")
    for index in range(count):
        job = store.add(owner_uid=1000 + index % 3, owner=f"user{index % 3}", name=f"job-{index}",
                        profile={"stage": "sft", "method": {"type": "lora"}}, gpus=0, stage="sft",
                        jobs_root=state_dir / "jobs")
        store.transition(job.id, JobState.STARTING, devices=[])
        store.transition(job.id, JobState.RUNNING, pid=None)
        store.transition(job.id, JobState.SUCCEEDED if index % 5 else JobState.FAILED, returncode=0)
    store.close()


async def measure(endpoint: str, count: int, events: int) -> dict:
    from ftlab.daemon import protocol as P
    from ftlab.tui.app import FtuiApp

    started = time.perf_counter()
    app = FtuiApp(endpoint=endpoint)
    async with app.run_test(size=(160, 48)) as pilot:
        while not (app.link_state == "up" and app.screen.table.row_count >= count):
            await asyncio.sleep(0.005)
        await pilot.pause()
        startup = time.perf_counter() - started
        table = app.screen.table
        handler, with_paint = [], []
        job = dict(app.model.jobs[count // 2])
        for index in range(events):
            job = {**job, "state": "running" if index % 2 == 0 else "succeeded", "ended": time.time()}
            seq = app.model.seq + 1
            t0 = time.perf_counter()
            app.on_link_event(f"job.{job['id']}", P.EV_JOB, seq, job)
            t1 = time.perf_counter()
            await pilot.pause()
            t2 = time.perf_counter()
            handler.append((t1 - t0) * 1000)
            with_paint.append((t2 - t0) * 1000)
        idle = []
        for _ in range(events):
            t0 = time.perf_counter()
            await pilot.pause()
            idle.append((time.perf_counter() - t0) * 1000)
        assert table.row_count == count
    return {"startup_s": startup, "handler_ms": handler, "paint_ms": with_paint, "idle_ms": idle}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--events", type=int, default=50)
    args = parser.parse_args(argv)
    from ftlab.daemon import client

    with tempfile.TemporaryDirectory(prefix="ftui-bench-", dir="/tmp") as tmp:
        root = Path(tmp)
        fill_store(root / "state", args.jobs)
        daemon = client.start_daemon(state_dir=root / "state", endpoint=f"ipc://{root}/ftd.sock",
                                     log_file=root / "ftd.log")
        try:
            imports = []
            for _ in range(3):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-c", "import ftlab.tui.app"], check=True)
                imports.append(time.perf_counter() - t0)
            result = asyncio.run(measure(daemon.endpoint, args.jobs, args.events))
        finally:
            daemon.stop()
    med = statistics.median
    print(f"python + import ftlab.tui.app (fresh interpreter, best of 3): {min(imports):.3f} s")
    print(f"app created → {args.jobs} jobs shown (hello, snapshot, fill, render): {result['startup_s']:.3f} s")
    print(f"one job event → table updated (handler), median/max of {args.events}: "
          f"{med(result['handler_ms']):.2f} / {max(result['handler_ms']):.2f} ms")
    print(f"one job event → table updated and repainted, median/max: "
          f"{med(result['paint_ms']):.2f} / {max(result['paint_ms']):.2f} ms")
    print(f"the pilot's pause with nothing to do (baseline of the line above), median: {med(result['idle_ms']):.2f} ms")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
