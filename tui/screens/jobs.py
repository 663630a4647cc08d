"""Jobs: every job ftd lets you see, live; filter by state and user; open, cancel, logs, resubmit."""

from __future__ import annotations

from typing import ClassVar

from ftlab.daemon import protocol as P
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from ..i18n import t
from ..link import LinkDown, RemoteError
from ..widgets.jobs_table import JobsTable
from .base import FtScreen
from .confirm import Confirm

STATE_FILTERS = (None, "active", "queued", "running", "succeeded", "failed", "cancelled", "lost")


class JobsScreen(FtScreen):
    TITLE_KEY = "mode.jobs"
    BINDINGS: ClassVar = [
        Binding("enter", "open", "key.open"),
        Binding("o", "open", "key.open"),
        Binding("l", "logs", "key.logs"),
        Binding("c", "cancel", "key.cancel"),
        Binding("r", "resubmit", "key.resubmit"),
        Binding("R", "resume", "key.resume"),
        Binding("s", "filter_state", "key.filter_state"),
        Binding("u", "filter_user", "key.filter_user"),
    ]

    def __init__(self):
        super().__init__()
        self.state_filter: str | None = None
        self.user_filter: str | None = None

    def body(self) -> ComposeResult:
        yield Static(id="jobs-filter")
        yield JobsTable(id="jobs-table")

    @property
    def table(self) -> JobsTable:
        return self.query_one(JobsTable)

    def on_mount(self) -> None:
        super().on_mount()
        self.refill()
        self.set_interval(1.0, self._tick)

    def resume(self) -> None:
        self.refill()

    def _tick(self) -> None:
        self.table.tick(self.app.model.jobs, self.app.now())

    def visible_jobs(self) -> list[dict]:
        return self.app.model.job_list(self.state_filter, self.user_filter)

    def refill(self) -> None:
        model = self.app.model
        jobs = self.visible_jobs()
        self.table.fill(jobs, model.progress, self.app.now())
        state = t("filter.all") if self.state_filter is None else (
            t("filter.active") if self.state_filter == "active" else t("state." + self.state_filter))
        user = self.user_filter or t("filter.everyone")
        self.query_one("#jobs-filter", Static).update(
            t("jobs.filter_line", state=state, user=user, shown=len(jobs), total=len(model.jobs)))

    def model_updated(self, kind: str, body) -> None:
        model = self.app.model
        if kind == P.EV_JOB:
            job = model.jobs[int(body["id"])]
        elif kind == P.EV_METRICS:
            job = model.jobs.get(int(body["job"]))
            if job is None:
                return
        elif kind == "snapshot":
            self.refill()
            return
        else:
            return
        visible = self._matches(job)
        if not self.table.update_job(job, model.progress.get(job["id"]), self.app.now(), visible):
            self.refill()

    def _matches(self, job: dict) -> bool:
        if self.user_filter and job.get("owner") != self.user_filter:
            return False
        if self.state_filter == "active":
            return job["state"] in ("queued", "starting", "running")
        return self.state_filter is None or job["state"] == self.state_filter

    def retranslate(self) -> None:
        super().retranslate()
        self.table.relabel()
        self.refill()

    # ── actions ────────────────────────────────────────────────────────────────────────────────
    def _selected(self) -> int | None:
        job_id = self.table.selected_job()
        if job_id is None:
            self.notify(t("jobs.none_selected"), severity="warning")
        return job_id

    def action_open(self, tab: str = "log") -> None:
        job_id = self._selected()
        if job_id is not None:
            from .job_detail import JobScreen

            self.app.push_screen(JobScreen(job_id, tab=tab))

    def action_logs(self) -> None:
        self.action_open("log")

    def action_filter_state(self) -> None:
        self.state_filter = STATE_FILTERS[(STATE_FILTERS.index(self.state_filter) + 1) % len(STATE_FILTERS)]
        self.refill()

    def action_filter_user(self) -> None:
        users = [None] + self.app.model.users()
        current = users.index(self.user_filter) if self.user_filter in users else 0
        self.user_filter = users[(current + 1) % len(users)]
        self.refill()

    def action_cancel(self) -> None:
        job_id = self._selected()
        if job_id is None:
            return
        job = self.app.model.jobs.get(job_id, {})
        if job.get("state") not in ("queued", "starting", "running"):
            self.notify(t("jobs.not_cancellable", id=job_id, state=t("state." + job.get("state", "lost"))),
                        severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.app.cancel_job(job_id)

        self.app.push_screen(Confirm(t("jobs.confirm_cancel", id=job_id, name=job.get("name", ""))), answered)

    def action_resubmit(self) -> None:
        job_id = self._selected()
        if job_id is not None:
            self.app.open_new_run(from_job=job_id)

    def action_resume(self) -> None:
        job_id = self._selected()
        if job_id is not None:
            self._resume(job_id)

    @work(exclusive=True, group="resume")
    async def _resume(self, job_id: int) -> None:
        try:
            await self.app.link.call(P.RESUME, {"id": job_id})
            self.notify(t("jobs.resumed", id=job_id))
        except (RemoteError, LinkDown) as err:
            self.notify(str(err), severity="error")
