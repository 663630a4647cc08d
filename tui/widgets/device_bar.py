"""One accelerator as a line: name, a VRAM bar, utilization, temperature and the holding job."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from .. import format as fmt
from ..i18n import t


def vram_style(fraction: float | None) -> str:
    if fraction is None:
        return "dim"
    return "red" if fraction > 0.9 else "yellow" if fraction > 0.7 else "green"


def devices_table(body: dict, jobs: dict[int, dict], width: int) -> Table:
    """A Rich table of GPUs (and the CPU slot) from a `devices` event body."""
    table = Table(expand=True, box=None, pad_edge=False, show_edge=False)
    bar_width = max(8, min(40, width - 62))
    for key, ratio in (("dev.index", 0), ("dev.name", 2), ("dev.vram", 0), ("dev.used", 0),
                       ("dev.util", 0), ("dev.temp", 0), ("dev.job", 1)):
        table.add_column(t(key), ratio=ratio or None, no_wrap=True, overflow="ellipsis")
    for dev in body.get("devices", []):
        used, total = dev.get("used_mib"), dev.get("total_mib")
        fraction = used / total if used is not None and total else None
        holder = dev.get("job")
        job_text = "-"
        if holder is not None:
            job = jobs.get(int(holder), {})
            job_text = f"#{holder} {job.get('name', '')} ({job.get('owner', '?')})"
        table.add_row(str(dev.get("index")), dev.get("name", ""),
                      Text(fmt.bar(fraction, bar_width), style=vram_style(fraction)),
                      f"{fmt.mib(used)}/{fmt.mib(total)}",
                      "-" if dev.get("utilization") is None else f"{dev['utilization']}%",
                      "-" if dev.get("temperature_c") is None else f"{dev['temperature_c']}°C",
                      job_text)
    cpu = body.get("cpu")
    if cpu:
        util = cpu.get("utilization")
        holders = ", ".join(f"#{j}" for j in cpu.get("jobs", [])) or "-"
        table.add_row("cpu", cpu.get("name", "CPU"), Text(fmt.bar(util / 100 if util is not None else None,
                                                                  bar_width), style="blue"),
                      t("dev.slots", n=cpu.get("slots", 0)),
                      "-" if util is None else f"{util:.0f}%", "-", holders)
    return table
