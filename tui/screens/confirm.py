"""A yes/no question as a modal (y / n / escape)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from ..i18n import t


class Confirm(ModalScreen[bool]):
    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > Vertical { width: 60; max-width: 90%; height: auto; border: thick $warning; background: $surface;
                         padding: 1 2; }
    """
    BINDINGS: ClassVar = [Binding("y", "answer(True)", "key.yes"), Binding("n", "answer(False)", "key.no"),
                Binding("escape", "answer(False)", "key.no", show=False)]

    def __init__(self, question: str):
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question)
            yield Static(f"[b]y[/b] {t('key.yes')}   [b]n[/b] {t('key.no')}", classes="dim")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)
