"""`FtuiApp`: the Textual app — modes for Jobs, New run, Devices and Chat over one link to ftd.

The app owns the `Link` (requests + event stream) and the `Model` (Clone-pattern state); link
callbacks update the model and hand each applied change to the screens of the current mode,
which redraw only what changed. A banner says when ftd is unreachable or restarted; resyncing
needs no restart of ftui.

    FtuiApp(endpoint=None, lang="en").run()
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

from ftlab.daemon import protocol as P
from textual.app import App
from textual.binding import Binding

from . import i18n
from .i18n import t
from .link import Link, LinkDown, RemoteError, Status
from .screens.devices import DevicesScreen
from .screens.jobs import JobsScreen
from .state import Model, Outcome


def _new_run_screen():
    """Imported on first use: the form pulls in the pydantic schema (~0.1 s of start-up)."""
    from .screens.new_run import NewRunScreen

    return NewRunScreen()


def _chat_screen():
    from .screens.chat import ChatScreen

    return ChatScreen()


class FtuiApp(App):
    CSS_PATH = str(Path(__file__).with_name("ftui.tcss"))
    TITLE = "ftui"
    MODES: ClassVar = {"jobs": JobsScreen, "new": _new_run_screen, "devices": DevicesScreen, "chat": _chat_screen}
    DEFAULT_MODE = "jobs"
    BINDINGS: ClassVar = [
        Binding("f1", "mode('jobs')", "mode.jobs", show=False, priority=True),
        Binding("f2", "mode('new')", "mode.new", show=False, priority=True),
        Binding("f3", "mode('devices')", "mode.devices", show=False, priority=True),
        Binding("f4", "mode('chat')", "mode.chat", show=False, priority=True),
        Binding("f8", "language", "mode.lang", show=False, priority=True),
        Binding("ctrl+q", "quit", "key.quit", priority=True),
    ]

    def __init__(self, endpoint: str | None = None, lang: str = "en", clock=time.time, connect: bool = True):
        super().__init__()
        i18n.set_language(lang)
        self.model = Model()
        self.clock = clock
        self.link = Link(endpoint, on_status=self.on_link_status, on_snapshot=self.on_link_snapshot,
                         on_event=self.on_link_event)
        self.connect = connect
        self.link_state = "connecting"
        self.user: str | None = None
        self.banner: tuple[str | None, bool] = (None, False)
        self.pending_new_run: int | None = None
        self.ever_connected = False
        self.chat_screen = None  # set by the Chat screen when it is first shown

    def now(self) -> float:
        return self.clock()

    def on_mount(self) -> None:
        if self.connect:
            self.run_worker(self.link.run(), name="link", group="link", exit_on_error=False)

    def on_unmount(self) -> None:
        self.link.close()

    # ── link callbacks ─────────────────────────────────────────────────────────────────────────
    def on_link_status(self, status: Status) -> None:
        previous = self.link_state
        self.link_state = status.state
        if status.state == "up":
            self.user = (status.hello or {}).get("user")
            if status.restarted:
                self.banner = (t("banner.restarted"), False)
                self.set_timer(5.0, self._clear_banner)
            elif self.ever_connected and previous != "up":
                self.banner = (t("banner.reconnected"), False)
                self.set_timer(3.0, self._clear_banner)
            else:
                self.banner = (None, False)
            self.ever_connected = True
        elif status.state == "down":
            self.banner = (t("banner.down", detail=status.detail), True)
        self._chrome()

    def _clear_banner(self) -> None:
        if self.link_state == "up":
            self.banner = (None, False)
            self._chrome()

    def _chrome(self) -> None:
        for screen in self.screen_stack:
            if hasattr(screen, "refresh_chrome") and screen.is_mounted:
                screen.refresh_chrome()

    def on_link_snapshot(self, body: dict) -> None:
        self.model.apply_snapshot(body)
        self._dispatch("snapshot", body)
        self.fetch_details()

    def on_link_event(self, topic: str, kind: str, seq: int | None, body: Any) -> None:
        outcome = self.model.apply_event(kind, seq, body)
        if outcome is Outcome.APPLIED and kind == P.EV_JOB and "method" not in self.model.jobs[int(body["id"])]:
            self.fetch_details([int(body["id"])])
        if outcome is Outcome.GAP:
            self.link.resync()
            return
        if outcome is Outcome.STALE:
            return
        self._dispatch(kind, body)

    def _dispatch(self, kind: str, body: Any) -> None:
        for screen in self.screen_stack:
            handler = getattr(screen, "model_updated", None)
            if handler is not None and screen.is_mounted:
                handler(kind, body)
        chat = self.chat_screen  # keeps streaming while another mode is shown
        if kind == P.EV_CHAT and chat is not None and chat.is_mounted and chat not in self.screen_stack:
            chat.model_updated(kind, body)

    DETAIL_JOBS = 60  # newest jobs whose method and latest loss are fetched after a snapshot

    def fetch_details(self, job_ids: list[int] | None = None) -> None:
        """The job list carries neither the method nor metrics: fetch them for running jobs (all
        their records, for progress) and for the newest others (method and last records)."""
        if job_ids is None:
            jobs = self.model.job_list()
            active = [j["id"] for j in jobs if j["state"] in ("starting", "running")]
            recent = [j["id"] for j in jobs[: self.DETAIL_JOBS] if j["id"] not in active]
            job_ids = active + recent
        if job_ids:
            self.run_worker(self._fetch_details(job_ids), group="details", exclusive=False, exit_on_error=False)

    async def _fetch_details(self, job_ids: list[int]) -> None:
        for job_id in job_ids:
            job = self.model.jobs.get(job_id)
            if job is None:
                continue
            active = job["state"] in ("starting", "running")
            try:
                if "method" not in job:
                    shown = await self.link.call(P.SHOW, {"id": job_id})
                    method = ((shown.get("profile") or {}).get("method") or {}).get("type")
                    self.model.methods[job_id] = method or ""
                    if job_id in self.model.jobs:
                        self.model.jobs[job_id]["method"] = method or ""
                reply = await self.link.call(P.METRICS, {"id": job_id, **({} if active else {"limit": 3})})
            except (LinkDown, RemoteError):
                continue
            body = {"job": job_id, "records": reply.get("records", [])}
            self.model.apply_event(P.EV_METRICS, None, body)
            self._dispatch(P.EV_METRICS, body)

    # ── actions shared by screens ──────────────────────────────────────────────────────────────
    def action_mode(self, mode: str) -> None:
        self.switch_mode(mode)

    def action_language(self) -> None:
        i18n.set_language(i18n.next_language())
        for screen in self.screen_stack:
            if hasattr(screen, "retranslate") and screen.is_mounted:
                screen.retranslate()
        self.notify(t("app.language", name=i18n.LANGUAGE_NAMES[i18n.language()]))

    def set_language(self, lang: str) -> None:
        while i18n.language() != lang:
            self.action_language()

    def open_new_run(self, from_job: int | None = None) -> None:
        self.pending_new_run = from_job
        self.switch_mode("new")

    def show_job(self, job_id: int) -> None:
        from .screens.job_detail import JobScreen

        self.switch_mode("jobs")
        while len(self.screen_stack) > 1 and isinstance(self.screen, JobScreen):
            self.pop_screen()
        self.push_screen(JobScreen(job_id))

    def cancel_job(self, job_id: int) -> None:
        async def cancel() -> None:
            try:
                await self.link.call(P.CANCEL, {"id": job_id})
                self.notify(t("jobs.cancel_sent", id=job_id))
            except (LinkDown, RemoteError) as err:
                self.notify(str(err), severity="error")

        self.run_worker(cancel(), group="cancel", exit_on_error=False)
