"""The jobs table: one row per job, updated in place cell by cell when a job event arrives."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from .. import format as fmt
from ..i18n import t
from ..state import Progress

COLUMNS = ("id", "name", "user", "stage", "state", "progress", "loss", "devices", "elapsed")
NAME_WIDTH = 18
STATE_STYLE = {"running": "bold green", "starting": "green", "queued": "yellow", "succeeded": "cyan",
               "failed": "bold red", "cancelled": "magenta", "lost": "red"}


def job_cells(job: dict, progress: Progress | None, now: float) -> tuple:
    profile = job.get("profile") or {}
    method = job.get("method") or (profile.get("method") or {}).get("type") or ""
    stage = job.get("stage", "")
    prog = progress or Progress()
    state = job.get("state", "")
    style = STATE_STYLE.get(state, "")
    name = job.get("name", "")
    name = name if len(name) <= NAME_WIDTH else name[: NAME_WIDTH - 1] + "…"
    return (str(job["id"]), name, job.get("owner", ""),
            f"{stage}/{method}" if method else stage,
            Text(t("state." + state), style=style),
            fmt.percent(prog.fraction, prog.step, prog.total_steps), fmt.loss(prog.loss),
            fmt.devices(job), fmt.elapsed(job, now))


class JobsTable(DataTable):
    DEFAULT_CSS = "JobsTable { height: 1fr; }"

    def __init__(self, **kwargs):
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._rows: dict[int, tuple] = {}
        self.add_labeled_columns()

    def add_labeled_columns(self) -> None:
        for key in COLUMNS:
            self.add_column(t("col." + key), key=key)

    def relabel(self) -> None:
        """Rebuild with the current language's headers, keeping rows and cursor."""
        rows, cursor = dict(self._rows), self.cursor_row
        self.clear(columns=True)
        self._rows = {}
        self.add_labeled_columns()
        for job_id, cells in rows.items():
            self.add_row(*cells, key=str(job_id))
            self._rows[job_id] = cells
        if rows:
            self.move_cursor(row=min(cursor, len(rows) - 1))

    def selected_job(self) -> int | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key((self.cursor_row, 0))
        return int(row_key.value)

    def fill(self, jobs: list[dict], progress: dict[int, Progress], now: float) -> None:
        """Show exactly these jobs (in this order), keeping the cursor on the same job."""
        selected = self.selected_job()
        self.clear()
        self._rows = {}
        for job in jobs:
            cells = job_cells(job, progress.get(job["id"]), now)
            self.add_row(*cells, key=str(job["id"]))
            self._rows[job["id"]] = cells
        if selected in self._rows:
            self.move_cursor(row=self.get_row_index(str(selected)))

    def update_job(self, job: dict, progress: Progress | None, now: float, visible: bool = True) -> bool:
        """Apply one job's new state: changed cells only; returns False when the row set must change."""
        job_id = job["id"]
        if job_id not in self._rows:
            return not visible
        if not visible:
            return False
        cells = job_cells(job, progress, now)
        old = self._rows[job_id]
        for key, before, after in zip(COLUMNS, old, cells):
            if before != after:
                self.update_cell(str(job_id), key, after, update_width=True)
        self._rows[job_id] = cells
        return True

    def tick(self, jobs: dict[int, dict], now: float) -> None:
        """Advance the elapsed column of running jobs."""
        for job_id, cells in self._rows.items():
            job = jobs.get(job_id)
            if job and job.get("state") in ("starting", "running"):
                value = fmt.elapsed(job, now)
                if value != cells[-1]:
                    self.update_cell(str(job_id), "elapsed", value)
                    self._rows[job_id] = cells[:-1] + (value,)
