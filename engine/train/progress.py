"""What a person sees while a run trains: a rich progress bar on a terminal, plain lines in a log.

    step 12/60 · loss 1.832 · 1,480 tok/s · ETA 0:01:10
"""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def _fmt(record: dict) -> str:
    loss = record.get("loss")
    parts = [f"loss {loss:.4f}" if loss is not None else "loss -"]
    if record.get("lr") is not None:
        parts.append(f"lr {record['lr']:.2e}")
    parts.append(f"{record.get('tokens_per_s', 0):,.0f} tok/s")
    return " · ".join(parts)


class ProgressDisplay:
    """mode: rich (a live bar), plain (one line per logging step) or none."""

    def __init__(self, mode: str = "auto"):
        if mode == "auto":
            mode = "rich" if sys.stdout.isatty() else "plain"
        self.mode = mode
        self.console = Console(stderr=False)
        self._progress = None
        self._task = None
        self._total = 0
        self._start = time.perf_counter()

    def start(self, total_steps: int) -> None:
        self._total = total_steps
        self._start = time.perf_counter()
        if self.mode == "rich":
            self._progress = Progress(
                TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
                TextColumn("ETA"), TimeRemainingColumn(), console=self.console, transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("train", total=total_steps, stats="")

    def update(self, record: dict, step: int) -> None:
        if self.mode == "rich" and self._progress is not None:
            self._progress.update(self._task, completed=step, stats=_fmt(record))
        elif self.mode == "plain":
            elapsed = time.perf_counter() - self._start
            eta = elapsed / max(step, 1) * max(self._total - step, 0)
            print(f"step {step}/{self._total} · {_fmt(record)} · ETA {time.strftime('%H:%M:%S', time.gmtime(eta))}",
                  flush=True)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def print(self, message: str) -> None:
        if self.mode == "none":
            return
        if self._progress is not None:
            self._progress.console.print(message, highlight=False, markup=False)
        else:
            print(message, flush=True)
