"""A job's log tail: follows new lines, scrolls freely, and searches (n / N jump between hits)."""

from __future__ import annotations

from textual.widgets import Log


class LogView(Log):
    """Log lines with follow on/off and a search that moves to the next matching line."""

    DEFAULT_CSS = "LogView { height: 1fr; border: round $primary-darken-2; }"
    MAX_LINES = 20000

    def __init__(self, **kwargs):
        super().__init__(max_lines=self.MAX_LINES, auto_scroll=True, **kwargs)
        self.query_text = ""
        self.hit: int | None = None

    @property
    def follow(self) -> bool:
        return self.auto_scroll

    def set_follow(self, on: bool) -> None:
        self.auto_scroll = on
        if on:
            self.scroll_end(animate=False)

    def add_lines(self, lines: list[str]) -> None:
        self.write_lines([line.rstrip("\n") for line in lines])

    def search(self, text: str, forward: bool = True) -> int | None:
        """Move to the next (or previous) line containing `text`; stops following. None: no hit."""
        self.query_text = text
        if not text:
            return None
        needle = text.lower()
        count = self.line_count
        start = self.hit if self.hit is not None else (self.scroll_offset.y - (1 if forward else -1))
        for step in range(1, count + 1):
            index = (start + step) % count if forward else (start - step) % count
            if needle in self.lines[index].lower():
                self.hit = index
                self.auto_scroll = False
                self.scroll_to(y=max(0, index - self.size.height // 2), animate=False)
                return index
        return None
