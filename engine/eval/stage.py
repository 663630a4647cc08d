"""What the eval and predict stages share: the run dir, metrics.jsonl, a warm stop, and dispatch.

    result = run_stage(loaded, run_dir, display)     # called by engine.train.runner.run_profile

The run dir gets config.yaml first, then metrics.jsonl (`start`, one record per batch with
step/total, `end`), the stage's results (written atomically) — ftlab.cli.cmd_run adds log.txt and
exit.json. A run dir that already holds results is refused unless output.overwrite is set. The
first SIGTERM/SIGINT stops after the current batch (nothing is written as if complete; exit 143);
a second one exits at once.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from ftlab.engine.config import LoadedProfile, Profile, dump_profile
from ftlab.errors import UserError

RESULT_FILES = ("results.json", "results.txt", "generated_predictions.jsonl")


class StopFlag:
    """Set by the first SIGTERM/SIGINT; the stage checks it between batches."""

    def __init__(self):
        self.requested = False
        self._old = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGTERM, signal.SIGINT)}

    def _handle(self, signum, frame):
        if self.requested:
            sys.stderr.write("second stop signal: exiting now\n")
            raise SystemExit(128 + signum)
        self.requested = True
        sys.stderr.write("stop requested: finishing this batch\n")

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def prepare_run_dir(profile: Profile, run_dir: Path) -> None:
    """Create the run dir, refuse to overwrite earlier results unless asked to, write config.yaml."""
    from ftlab.engine.train.runner import write_atomic

    run_dir.mkdir(parents=True, exist_ok=True)
    old = [name for name in RESULT_FILES if (run_dir / name).exists()]
    if old and not profile.output.overwrite:
        raise UserError(f"output.dir {run_dir} already holds results ({', '.join(old)}); set output.overwrite: "
                        f"true or pick another output.dir")
    if old:
        for name in (*RESULT_FILES, "metrics.jsonl", "exit.json"):
            (run_dir / name).unlink(missing_ok=True)
    write_atomic(run_dir / "config.yaml", dump_profile(profile))


class BatchLog:
    """metrics.jsonl records and a console line about every tenth batch."""

    def __init__(self, run_dir: Path, display, label: str, total: int, unit: str):
        from ftlab.engine.train.callbacks import MetricsWriter

        self.writer = MetricsWriter(run_dir / "metrics.jsonl")
        self.display, self.label, self.total, self.unit = display, label, total, unit
        self.started = time.perf_counter()
        self.tokens = 0
        self.writer.write({"event": "start", "stage": label, "total_steps": total})

    def step(self, step: int, tokens: int, **extra) -> None:
        from ftlab.engine.train.callbacks import peak_memory_gib

        self.tokens += tokens
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        record = {"step": step, "tokens_per_s": round(self.tokens / elapsed, 1),
                  "peak_mem_gib": round(peak_memory_gib(), 3), **extra}
        self.writer.write(record)
        every = max(1, self.total // 10)
        if step % every == 0 or step == self.total:
            eta = elapsed / step * (self.total - step)
            self.display.print(f"{self.label} batch {step}/{self.total} · {self.tokens / elapsed:,.0f} {self.unit}/s"
                               f" · ETA {time.strftime('%H:%M:%S', time.gmtime(eta))}")

    def end(self, status: str, **summary) -> None:
        self.writer.write({"event": "end", "status": status,
                           "runtime_s": round(time.perf_counter() - self.started, 2), **summary})
        self.writer.close()


def run_stage(loaded: LoadedProfile, run_dir: Path, display):
    """Run the eval or predict stage of `loaded.profile` into `run_dir` (a runner.RunResult)."""
    from ftlab.engine.quiet import quiet_libraries

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError(f"stage {loaded.profile.stage} runs in one process on one device; submit it with --gpus 1")
    quiet_libraries()
    if loaded.profile.stage == "eval":
        from .benchmark import run_eval

        return run_eval(loaded.profile, run_dir, display)
    if loaded.profile.stage == "predict":
        from .predict import run_predict

        return run_predict(loaded.profile, run_dir, display)
    raise UserError(f"stage: {loaded.profile.stage!r} is a training stage, not eval or predict")
