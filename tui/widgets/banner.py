"""A one-line banner over every screen: ftd unreachable, ftd restarted, resynced."""

from __future__ import annotations

from textual.widgets import Static


class Banner(Static):
    DEFAULT_CSS = """
    Banner { dock: top; height: auto; max-height: 3; display: none; background: $warning; color: $background; padding: 0 1; }
    Banner.-error { background: $error; color: $text; }
    Banner.-shown { display: block; }
    """

    def show(self, text: str, error: bool = False) -> None:
        self.update(text)
        self.set_class(error, "-error")
        self.add_class("-shown")

    def hide(self) -> None:
        self.remove_class("-shown")
