"""How ftctl's job commands print for people (rich tables) and for scripts (--json).

Shared by submit, jobs, show, cancel, resume and devices; rich is imported only when a table is
drawn, so `ftctl jobs --json` stays fast.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def print_json(data: Any) -> None:
    # one dumps + one write: json.dump would write each token separately (10,000 jobs: ~1 s)
    sys.stdout.write(json.dumps(data, indent=2 if sys.stdout.isatty() else None, default=str) + "\n")


def age(ts: float | None) -> str:
    if not ts:
        return "-"
    seconds = max(0, time.time() - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


def duration(job: dict) -> str:
    if not job.get("started"):
        return "-"
    seconds = (job.get("ended") or time.time()) - job["started"]
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def devices_text(job: dict) -> str:
    if job.get("state") in ("starting", "running"):
        return ",".join(f"gpu{d}" for d in job.get("devices") or []) or "cpu"
    return f"{job.get('gpus')} gpu" if job.get("gpus") else "cpu"


STATE_STYLE = {"queued": "yellow", "starting": "cyan", "running": "bold cyan", "succeeded": "green",
               "failed": "bold red", "cancelled": "magenta", "lost": "red"}


def console():
    from rich.console import Console

    return Console(highlight=False)


def jobs_table(jobs: list[dict], show_owner: bool) -> None:
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ["ID", "NAME", *(["USER"] if show_owner else []), "STAGE", "STATE", "DEVICES", "PRIO",
                   "SUBMITTED", "RAN"]:
        table.add_column(column, no_wrap=column != "NAME")
    for job in jobs:
        state = job["state"]
        table.add_row(str(job["id"]), job["name"], *([job["owner"]] if show_owner else []), job["stage"],
                      f"[{STATE_STYLE.get(state, '')}]{state}[/]", devices_text(job), str(job["priority"]),
                      age(job["created"]), duration(job))
    console().print(table if jobs else "no jobs")


def job_detail(job: dict) -> None:
    out = console()
    state = job["state"]
    out.print(f"[bold]job {job['id']}[/] {job['name']}  [{STATE_STYLE.get(state, '')}]{state}[/]")
    rows = [("owner", job["owner"]), ("stage", job["stage"]), ("priority", job["priority"]),
            ("gpus asked", job["gpus"]), ("devices", devices_text(job)), ("job dir", job["job_dir"]),
            ("submitted", age(job["created"])), ("ran", duration(job))]
    if job.get("queue_position"):
        rows.append(("queue position", job["queue_position"]))
    if job.get("pid"):
        rows.append(("pid", job["pid"]))
    if job.get("peak_vram_mib"):
        rows.append(("peak VRAM", f"{job['peak_vram_mib']} MiB"))
    if job.get("returncode") is not None:
        rows.append(("return code", job["returncode"]))
    if job.get("error"):
        rows.append(("error", job["error"]))
    metrics = job.get("last_metrics") or {}
    if metrics.get("step") is not None:
        rows.append(("last step", f"step {metrics['step']} loss {metrics.get('loss')} lr {metrics.get('lr')}"))
    if metrics.get("event") == "end" and "accuracy" in metrics:  # stage eval
        rows.append(("accuracy", metrics["accuracy"]))
    elif metrics.get("event") == "end" and "predict_bleu-4" in metrics:  # stage predict
        rows.append(("bleu-4, rouge-l", f"{metrics['predict_bleu-4']}, {metrics.get('predict_rouge-l')}"))
    elif metrics.get("event") == "end":
        rows.append(("train loss", metrics.get("train_loss")))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        out.print(f"  {key:<{width}}  {value}", markup=False)
