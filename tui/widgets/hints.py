"""The footer: the current screen's key bindings with their descriptions in the current language.

Bindings name an i18n key as their description (`Binding("c", "cancel", "key.cancel")`), so the
hints follow a language switch at run time; Textual's own Footer would show the raw key.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..i18n import t


class KeyHints(Static):
    DEFAULT_CSS = """
    KeyHints { dock: bottom; height: 1; background: $panel; color: $text; }
    """

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, lambda _screen: self.refresh_hints())
        self.refresh_hints()

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def refresh_hints(self) -> None:
        if not self.is_attached or not self.app.is_running:
            return
        text = Text(no_wrap=True, overflow="ellipsis")
        seen = set()
        for active in self.screen.active_bindings.values():
            binding = active.binding
            if not binding.show or not binding.description or binding.action in seen:
                continue
            seen.add(binding.action)
            text.append(f" {binding.key_display or self.app.get_key_display(binding)} ", style="bold reverse")
            text.append(f" {t(binding.description)} ")
        self.update(text)
