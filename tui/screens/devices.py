"""Devices: per-GPU VRAM bars, utilization, temperature and the holding job, refreshed every second
(ftd publishes telemetry once a second; this screen redraws on each sample)."""

from __future__ import annotations

from ftlab.daemon import protocol as P
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from .. import format as fmt
from ..i18n import t
from ..widgets.device_bar import devices_table
from .base import FtScreen


class DevicesScreen(FtScreen):
    TITLE_KEY = "mode.devices"

    def body(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(id="devices-table")
            yield Static(id="devices-host")

    def on_mount(self) -> None:
        super().on_mount()
        self.redraw()

    def resume(self) -> None:
        self.redraw()

    def on_resize(self) -> None:
        self.redraw()

    def model_updated(self, kind: str, body) -> None:
        if kind in (P.EV_DEVICES, "snapshot"):
            self.redraw()

    def retranslate(self) -> None:
        super().retranslate()
        self.redraw()

    def redraw(self) -> None:
        model = self.app.model
        body = model.devices or {}
        table = self.query_one("#devices-table", Static)
        if not body:
            table.update(t("dev.none"))
        else:
            table.update(devices_table(body, model.jobs, self.size.width))
        host = body.get("host") or {}
        if host:
            self.query_one("#devices-host", Static).update(
                "\n" + t("dev.host", cpu=f"{host.get('cpu_percent', 0):.0f}", cores=host.get("cpu_count", "?"),
                         ram=f"{fmt.mib(host.get('ram_used_mib'))}/{fmt.mib(host.get('ram_total_mib'))}",
                         source=body.get("source", "?")))
