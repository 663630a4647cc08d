"""The jobs table: one line per job, with a fixed header and a keyboard cursor.

Built on Textual's line API (`ScrollView.render_line`) rather than `DataTable`: a job event
rewrites one job's cells and re-renders that one line, whereas DataTable invalidates every
visible cell on any update (~100 ms for a 160×48 screen on a busy 2-core machine; one line is
well under a millisecond). Column widths follow the content; when the terminal is too narrow the
name column gives way first.
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .. import format as fmt
from ..i18n import t
from ..state import Progress

COLUMNS = ("id", "name", "user", "stage", "state", "progress", "loss", "devices", "elapsed")
NAME = COLUMNS.index("name")
NAME_WIDTH = 18
MIN_NAME_WIDTH = 8
GAP = 2
STATE_STYLE = {"running": "bold green", "starting": "green", "queued": "yellow", "succeeded": "cyan",
               "failed": "bold red", "cancelled": "magenta", "lost": "red"}


def job_cells(job: dict, progress: Progress | None, now: float) -> tuple:
    profile = job.get("profile") or {}
    method = job.get("method") or (profile.get("method") or {}).get("type") or ""
    stage = job.get("stage", "")
    prog = progress or Progress()
    state = job.get("state", "")
    name = job.get("name", "")
    name = name if len(name) <= NAME_WIDTH else name[: NAME_WIDTH - 1] + "…"
    return (str(job["id"]), name, job.get("owner", ""), f"{stage}/{method}" if method else stage,
            Text(t("state." + state), style=STATE_STYLE.get(state, "")),
            fmt.percent(prog.fraction, prog.step, prog.total_steps), fmt.loss(prog.loss),
            fmt.devices(job), fmt.elapsed(job, now))


def _width(cell) -> int:
    return cell.cell_len if isinstance(cell, Text) else len(cell)


class JobsTable(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    JobsTable { height: 1fr; }
    JobsTable > .jobs-table--header { text-style: bold; background: $panel; }
    JobsTable > .jobs-table--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
    JobsTable > .jobs-table--odd { background: $surface-lighten-1; }
    """
    COMPONENT_CLASSES: ClassVar = {"jobs-table--header", "jobs-table--cursor", "jobs-table--odd"}
    BINDINGS: ClassVar = [
        Binding("up", "cursor(-1)", show=False), Binding("down", "cursor(1)", show=False),
        Binding("pageup", "page(-1)", show=False), Binding("pagedown", "page(1)", show=False),
        Binding("home", "jump(0)", show=False), Binding("end", "jump(-1)", show=False),
    ]

    cursor_row: reactive[int] = reactive(0, always_update=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.order: list[int] = []            # job ids, top to bottom
        self.index: dict[int, int] = {}       # job id → line
        self.cells: dict[int, tuple] = {}     # job id → its cells
        self.widths: list[int] = []
        self._cache: dict[tuple, Strip] = {}
        self._relabel_headers()

    # ── the DataTable-like surface the screens and tests use ───────────────────────────────────
    @property
    def row_count(self) -> int:
        return len(self.order)

    def get_row_index(self, key: str) -> int:
        return self.index[int(key)]

    def get_row(self, key: str) -> tuple:
        return self.cells[int(key)]

    def selected_job(self) -> int | None:
        return self.order[self.cursor_row] if self.order else None

    def move_cursor(self, row: int) -> None:
        self.cursor_row = max(0, min(row, len(self.order) - 1))

    # ── content ────────────────────────────────────────────────────────────────────────────────
    def _relabel_headers(self) -> None:
        self.headers = tuple(t("col." + key) for key in COLUMNS)
        self._recompute_widths()

    def relabel(self) -> None:
        """Headers in the current language (the cells are re-made by the screen's refill)."""
        self._relabel_headers()
        self.refresh()

    def _recompute_widths(self) -> None:
        widths = [len(h) for h in self.headers]
        for cells in self.cells.values():
            for i, cell in enumerate(cells):
                widths[i] = max(widths[i], _width(cell))
        self.widths = widths
        self._cache.clear()
        self.virtual_size = Size(sum(widths) + GAP * (len(widths) - 1) + 2, len(self.order) + 1)

    def fill(self, jobs: list[dict], progress: dict[int, Progress], now: float) -> None:
        """Show exactly these jobs (in this order), keeping the cursor on the same job."""
        selected = self.selected_job()
        self.order = [job["id"] for job in jobs]
        self.index = {job_id: line for line, job_id in enumerate(self.order)}
        self.cells = {job["id"]: job_cells(job, progress.get(job["id"]), now) for job in jobs}
        self._recompute_widths()
        self.cursor_row = self.index.get(selected, min(self.cursor_row, max(0, len(self.order) - 1)))
        self.refresh()

    def _set_cells(self, job_id: int, cells: tuple) -> None:
        self.cells[job_id] = cells
        if any(_width(cell) > width for cell, width in zip(cells, self.widths)):
            self._recompute_widths()
            self.refresh()
            return
        for key in [k for k in self._cache if k[0] == job_id]:
            del self._cache[key]
        self.refresh_line(self.index[job_id])

    def update_job(self, job: dict, progress: Progress | None, now: float, visible: bool = True) -> bool:
        """Apply one job's new state to its line; returns False when the set of lines must change."""
        job_id = job["id"]
        if job_id not in self.index:
            return not visible
        if not visible:
            return False
        cells = job_cells(job, progress, now)
        if cells != self.cells[job_id]:
            self._set_cells(job_id, cells)
        return True

    def tick(self, jobs: dict[int, dict], now: float) -> None:
        """Advance the elapsed column of running jobs."""
        for job_id, cells in list(self.cells.items()):
            job = jobs.get(job_id)
            if job and job.get("state") in ("starting", "running"):
                value = fmt.elapsed(job, now)
                if value != cells[-1]:
                    self._set_cells(job_id, cells[:-1] + (value,))

    # ── rendering ──────────────────────────────────────────────────────────────────────────────
    def refresh_line(self, line: int) -> None:
        """Repaint one job's line (screen row = 1 + line − scroll)."""
        y = line + 1 - int(self.scroll_offset.y)
        if 1 <= y < self.size.height:
            self.refresh_lines(y)

    def _fit_widths(self) -> list[int]:
        widths = list(self.widths)
        spare = self.size.width - (sum(widths) + GAP * (len(widths) - 1) + 1)
        if spare < 0:
            widths[NAME] = max(MIN_NAME_WIDTH, widths[NAME] + spare)
        return widths

    def _line_text(self, cells, widths: list[int]) -> Text:
        line = Text(" ", no_wrap=True, end="")
        for i, (cell, width) in enumerate(zip(cells, widths)):
            text = cell.copy() if isinstance(cell, Text) else Text(cell)
            text.truncate(width, overflow="ellipsis", pad=True)
            line.append_text(text)
            if i < len(widths) - 1:
                line.append(" " * GAP)
        return line

    def _strip(self, text: Text, style: Style, width: int) -> Strip:
        segments = list(text.render(self.app.console))
        return Strip(segments).crop_extend(0, width, style).apply_style(style)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        widths = self._fit_widths()
        if y == 0:
            style = self.get_component_rich_style("jobs-table--header")
            return self._strip(self._line_text(self.headers, widths), style, width)
        line = int(self.scroll_offset.y) + y - 1
        if line >= len(self.order):
            return Strip([Segment(" " * width, self.rich_style)])
        job_id = self.order[line]
        cursor = line == self.cursor_row
        key = (job_id, cursor, line % 2, width, tuple(widths), self.has_focus)
        strip = self._cache.get(key)
        if strip is None:
            if cursor:
                style = self.get_component_rich_style("jobs-table--cursor")
            elif line % 2:
                style = self.get_component_rich_style("jobs-table--odd")
            else:
                style = self.rich_style
            strip = self._cache[key] = self._strip(self._line_text(self.cells[job_id], widths), style, width)
        return strip

    # ── cursor ─────────────────────────────────────────────────────────────────────────────────
    def watch_cursor_row(self, old: int, new: int) -> None:
        visible = max(1, self.size.height - 1)
        top = int(self.scroll_offset.y)
        if new < top:
            self.scroll_to(y=new, animate=False)
        elif new >= top + visible:
            self.scroll_to(y=new - visible + 1, animate=False)
        self.refresh_line(old)
        self.refresh_line(new)

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(self.cursor_row + delta)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self.cursor_row + direction * max(1, self.size.height - 2))

    def action_jump(self, row: int) -> None:
        self.move_cursor(row if row >= 0 else len(self.order) - 1)

    def on_click(self, event) -> None:
        if event.y >= 1:
            self.move_cursor(int(self.scroll_offset.y) + event.y - 1)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
