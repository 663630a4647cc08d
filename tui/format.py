"""Small text formatters shared by the screens (durations, memory, losses, progress)."""

from __future__ import annotations

import math


def elapsed(job: dict, now: float) -> str:
    start = job.get("started")
    if not start:
        return "-"
    end = job.get("ended") or now
    seconds = max(0, int(end - start))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def mib(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1024:.1f}G" if value >= 1024 else f"{int(value)}M"


def loss(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4f}"


def percent(fraction: float | None, step: int | None = None, total: int | None = None) -> str:
    if fraction is None:
        return "-" if step is None else str(step)
    text = f"{fraction * 100:3.0f}%"
    if step is not None and total:
        text += f" {step}/{total}"
    return text


def bar(fraction: float | None, width: int) -> str:
    """A text bar such as `█████░░░░░` (width cells)."""
    if fraction is None:
        return "·" * width
    full = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * full + "░" * (width - full)


def devices(job: dict) -> str:
    devs = job.get("devices") or []
    if devs:
        return ",".join(str(d) for d in devs)
    return "cpu" if job.get("gpus", 1) == 0 and job.get("state") in ("starting", "running") else "-"
