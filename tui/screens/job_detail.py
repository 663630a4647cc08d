"""Job detail: the resolved config, the live log tail (follow, scroll, search) and live curves."""

from __future__ import annotations

from typing import ClassVar

import yaml
from ftlab.daemon import protocol as P
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Input, Static, TabbedContent, TabPane

from .. import format as fmt
from ..i18n import t
from ..link import LinkDown, RemoteError
from ..state import Progress
from ..widgets.curves import Curve
from ..widgets.log_view import LogView
from .base import FtScreen
from .confirm import Confirm

TABS = ("config", "log", "curves")
LOG_TAIL_BYTES = 256 * 1024


class JobScreen(FtScreen):
    TITLE_KEY = "mode.job"
    BINDINGS: ClassVar = [
        Binding("escape", "back", "key.back"),
        Binding("1", "tab('config')", "key.config"),
        Binding("2", "tab('log')", "key.log"),
        Binding("3", "tab('curves')", "key.curves"),
        Binding("f", "follow", "key.follow"),
        Binding("slash", "search", "key.search"),
        Binding("n", "next_hit", "key.next", show=False),
        Binding("N", "prev_hit", "key.prev", show=False),
        Binding("c", "cancel", "key.cancel"),
        Binding("r", "resubmit", "key.resubmit"),
    ]

    def __init__(self, job_id: int, tab: str = "log"):
        super().__init__()
        self.job_id = job_id
        self.initial_tab = tab
        self.log_end = 0
        self.detail: dict = {}
        self.loaded = False

    def title_text(self) -> str:
        job = self.app.model.jobs.get(self.job_id, {})
        return f"{t('mode.job')} #{self.job_id} {job.get('name', '')}"

    def body(self) -> ComposeResult:
        yield Static(id="job-summary")
        with TabbedContent(initial=self.initial_tab, id="job-tabs"):
            with TabPane(t("tab.config"), id="config"):
                yield Static(id="job-config", expand=True)
            with TabPane(t("tab.log"), id="log"):
                yield LogView(id="job-log")
                yield Input(placeholder=t("job.search_placeholder"), id="log-search", classes="hidden")
            with TabPane(t("tab.curves"), id="curves"), Horizontal():
                yield Curve(t("curve.loss"), "cyan", id="curve-loss")
                yield Curve(t("curve.lr"), "magenta", id="curve-lr")

    def on_mount(self) -> None:
        super().on_mount()
        self.update_summary()
        self.load()

    @property
    def log_view(self) -> LogView:
        return self.query_one(LogView)

    @property
    def progress(self) -> Progress:
        return self.app.model.progress.setdefault(self.job_id, Progress())

    # ── loading and live updates ───────────────────────────────────────────────────────────────
    @work(exclusive=True, group="job-load")
    async def load(self) -> None:
        link = self.app.link
        try:
            detail = await link.call(P.SHOW, {"id": self.job_id})
            logs = await link.call(P.LOGS, {"id": self.job_id, "offset": -LOG_TAIL_BYTES,
                                            "max_bytes": LOG_TAIL_BYTES})
            metrics = await link.call(P.METRICS, {"id": self.job_id})
        except (LinkDown, RemoteError) as err:
            self.query_one("#job-config", Static).update(f"[red]{err}[/]")
            return
        self.apply_loaded(detail, logs, metrics)

    def apply_loaded(self, detail: dict, logs: dict, metrics: dict) -> None:
        """Show a `show` reply, a `logs` tail and the `metrics` records (then follow events)."""
        self.detail = detail
        profile = detail.get("profile") or {}
        self.query_one("#job-config", Static).update(
            yaml.safe_dump(profile, sort_keys=False, allow_unicode=True) if profile else t("job.no_config"))
        text = logs.get("data", "")
        if logs.get("offset", 0) > 0 and "\n" in text:
            text = text.split("\n", 1)[1]  # drop the partial first line of a tail
        self.log_view.clear()
        self.log_view.add_lines(text.splitlines())
        self.log_end = logs.get("end", 0)
        for record in metrics.get("records", []):
            self.progress.add(record)
        self.loaded = True
        self.update_curves()
        self.update_summary()

    @work(exclusive=True, group="job-catchup")
    async def catch_up(self) -> None:
        """Fetch the log from what we have onwards (after a gap in the log events, or a resume)."""
        try:
            logs = await self.app.link.call(P.LOGS, {"id": self.job_id, "offset": self.log_end})
        except (LinkDown, RemoteError):
            return
        data = logs.get("data", "")
        complete = data[: data.rfind("\n") + 1] if "\n" in data else ""
        if complete:
            self.log_view.add_lines(complete.splitlines())
            self.log_end = logs["offset"] + len(complete.encode())

    def model_updated(self, kind: str, body) -> None:
        if kind == P.EV_LOG and int(body.get("job", -1)) == self.job_id and self.loaded:
            if body.get("end", 0) <= self.log_end:
                return
            if body.get("offset", 0) == self.log_end:
                self.log_view.add_lines(body.get("lines", []))
                self.log_end = body["end"]
            else:
                self.catch_up()
        elif kind == P.EV_METRICS and int(body.get("job", -1)) == self.job_id:
            self.update_curves()
            self.update_summary()
        elif kind in (P.EV_DEVICES, "snapshot") or (kind == P.EV_JOB and int(body.get("id", -1)) == self.job_id):
            self.update_summary()

    def resume(self) -> None:
        self.update_summary()
        self.update_curves()
        if self.loaded:
            self.catch_up()

    def update_summary(self) -> None:
        job = self.app.model.jobs.get(self.job_id, {})
        prog = self.progress
        vram = (self.app.model.devices.get("jobs_vram_mib") or {}).get(str(self.job_id))
        peak = job.get("peak_vram_mib")
        mem = fmt.mib(vram) if vram is not None else (
            fmt.mib(peak) if peak else (f"{prog.peak_mem_gib:.2f}G" if prog.peak_mem_gib is not None else "-"))
        state = job.get("state", "?")
        parts = [f"[b]{t('state.' + state)}[/b]",
                 t("job.step", progress=fmt.percent(prog.fraction, prog.step, prog.total_steps)),
                 t("job.loss", loss=fmt.loss(prog.loss)),
                 t("job.lr", lr="-" if prog.lr is None else f"{prog.lr:.2e}"),
                 t("job.tps", tps="-" if prog.tokens_per_s is None else f"{prog.tokens_per_s:.0f}"),
                 t("job.vram", vram=mem), t("job.devices", devices=fmt.devices(job)),
                 t("job.elapsed", elapsed=fmt.elapsed(job, self.app.now()))]
        if job.get("error"):
            parts.append(f"[red]{job['error']}[/]")
        self.query_one("#job-summary", Static).update("  ".join(parts))
        self.refresh_chrome()  # the title carries the job name once known

    def update_curves(self) -> None:
        prog = self.progress
        self.query_one("#curve-loss", Curve).show(prog.steps, prog.losses)
        self.query_one("#curve-lr", Curve).show(prog.steps, prog.lrs)

    def retranslate(self) -> None:
        super().retranslate()
        tabs = self.query_one(TabbedContent)
        for key in TABS:
            tabs.get_tab(key).label = t("tab." + key)
        self.query_one("#curve-loss", Curve).title_text = t("curve.loss")
        self.query_one("#curve-lr", Curve).title_text = t("curve.lr")
        self.query_one("#log-search", Input).placeholder = t("job.search_placeholder")
        self.update_summary()
        self.update_curves()

    # ── actions ────────────────────────────────────────────────────────────────────────────────
    def action_back(self) -> None:
        search = self.query_one("#log-search", Input)
        if search.has_focus:
            search.add_class("hidden")
            self.log_view.focus()
            return
        self.app.pop_screen()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_follow(self) -> None:
        self.log_view.set_follow(not self.log_view.follow)
        self.notify(t("job.follow_on") if self.log_view.follow else t("job.follow_off"))

    def action_search(self) -> None:
        self.action_tab("log")
        search = self.query_one("#log-search", Input)
        search.remove_class("hidden")
        search.focus()

    @on(Input.Submitted, "#log-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        self.log_view.hit = None
        self._report(self.log_view.search(event.value))
        event.input.add_class("hidden")
        self.log_view.focus()

    def _report(self, hit: int | None) -> None:
        if hit is None and self.log_view.query_text:
            self.notify(t("job.no_match", text=self.log_view.query_text), severity="warning")

    def action_next_hit(self) -> None:
        self._report(self.log_view.search(self.log_view.query_text, forward=True))

    def action_prev_hit(self) -> None:
        self._report(self.log_view.search(self.log_view.query_text, forward=False))

    def action_cancel(self) -> None:
        job = self.app.model.jobs.get(self.job_id, {})
        if job.get("state") not in ("queued", "starting", "running"):
            self.notify(t("jobs.not_cancellable", id=self.job_id, state=t("state." + job.get("state", "lost"))),
                        severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.app.cancel_job(self.job_id)

        self.app.push_screen(Confirm(t("jobs.confirm_cancel", id=self.job_id, name=job.get("name", ""))), answered)

    def action_resubmit(self) -> None:
        self.app.open_new_run(from_job=self.job_id)
