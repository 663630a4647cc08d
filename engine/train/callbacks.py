"""Trainer callbacks: metrics.jsonl, the progress display, and a warm stop on SIGTERM.

metrics.jsonl is what ftd tails and ftui plots: a `start` record, one record per logging step
(step, epoch, loss, lr, grad_norm, tokens/s, peak memory, and a preference stage's own numbers:
rewards/accuracies, rewards/margins, accuracy...) and an `end` record. Each line is
flushed as it is written.
"""

from __future__ import annotations

import json
import math
import resource
import signal
import sys
import time
from pathlib import Path

import torch
from transformers import TrainerCallback


def peak_memory_gib() -> float:
    """Peak accelerator memory (allocator reserved) on a GPU, else peak RSS of this process."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_reserved() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsWriter:
    """Appends JSON records to metrics.jsonl, one flushed line each."""

    def __init__(self, path: Path):
        self.path = path
        self._file = open(path, "a", encoding="utf-8", buffering=1)

    def write(self, record: dict) -> None:
        record = {"ts": round(time.time(), 3), **{k: _finite(v) for k, v in record.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


# What preference trainers (trl) log besides the loss: rewards/*, logps/*, logits/* and these.
OBJECTIVE_KEYS = ("accuracy", "margin", "mean_reward", "min_reward", "max_reward", "kl", "nll_loss",
                  "log_odds_ratio", "log_odds_chosen")


def objective_metrics(logs: dict) -> dict:
    """The stage's own numbers from a Trainer log event (rm accuracy, DPO reward margins...)."""
    return {k: v for k, v in logs.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            and ("/" in k and not k.startswith("eval_") or k in OBJECTIVE_KEYS)}


class MetricsCallback(TrainerCallback):
    """Turns the Trainer's log events into metrics.jsonl records with throughput and memory."""

    def __init__(self, writer: MetricsWriter, on_record=None):
        self.writer = writer
        self.on_record = on_record
        self._last_tokens = 0
        self._last_time = None
        self.records: list[dict] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self._last_time = time.perf_counter()
        self._last_tokens = state.num_input_tokens_seen or 0
        self.writer.write({"event": "start", "total_steps": state.max_steps, "start_step": state.global_step})

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" not in logs:
            return
        now = time.perf_counter()
        tokens = state.num_input_tokens_seen or 0
        elapsed = max(now - (self._last_time or now), 1e-9)
        record = {
            "step": state.global_step,
            "epoch": round(logs.get("epoch", state.epoch or 0.0), 4),
            "loss": logs.get("loss"),
            "lr": logs.get("learning_rate"),
            "grad_norm": logs.get("grad_norm"),
            "tokens_per_s": round((tokens - self._last_tokens) / elapsed, 1),
            "tokens_seen": tokens,
            "peak_mem_gib": round(peak_memory_gib(), 3),
            **objective_metrics(logs),
        }
        self._last_time, self._last_tokens = now, tokens
        self.records.append(record)
        self.writer.write(record)
        if self.on_record:
            self.on_record(record, state)


class StopOnSignal(TrainerCallback):
    """First SIGTERM/SIGINT: finish the current step, save a checkpoint, stop (a warm stop).
    A second one: exit at once (a cold stop)."""

    def __init__(self):
        self.requested = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        if self.requested:
            sys.stderr.write("second stop signal: exiting now\n")
            raise SystemExit(128 + signum)
        self.requested = True
        sys.stderr.write("stop requested: finishing this step and saving a checkpoint\n")

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested:
            control.should_save = True
            control.should_training_stop = True
        return control
