"""What every ftui screen shares: the title line, the ftd banner, the key hints, retranslation."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from ..i18n import language, t
from ..widgets.banner import Banner
from ..widgets.hints import KeyHints


class FtScreen(Screen):
    """A screen with a title bar, the banner and translated key hints around `body()`."""

    TITLE_KEY = "app.title"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._lang = language()

    def compose(self) -> ComposeResult:
        yield Static(id="title-bar")
        yield Banner(id="banner")
        yield from self.body()
        yield KeyHints(id="hints")

    def body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.refresh_chrome()

    def on_screen_resume(self) -> None:
        if self._lang != language():
            self.retranslate()
        self.refresh_chrome()
        self.resume()

    def resume(self) -> None:
        """Bring the screen up to date with the model after it was hidden."""

    def title_text(self) -> str:
        return t(self.TITLE_KEY)

    def refresh_chrome(self) -> None:
        app = self.app
        who = f"{app.user}@" if getattr(app, "user", None) else ""
        state = t("link." + getattr(app, "link_state", "connecting"))
        self.query_one("#title-bar", Static).update(
            f"[b]ftui[/b] · {self.title_text()}  [dim]{who}ftd: {state} · F1 {t('mode.jobs')} F2 {t('mode.new')} "
            f"F3 {t('mode.devices')} F4 {t('mode.chat')} F8 {t('mode.lang')}[/]")
        banner = self.query_one("#banner", Banner)
        message, error = getattr(app, "banner", (None, False))
        if message:
            banner.show(message, error)
        else:
            banner.hide()
        self.query_one("#hints", KeyHints).refresh_hints()

    def retranslate(self) -> None:
        """Re-label everything in the current language (called on a language switch)."""
        self._lang = language()
        self.refresh_chrome()

    def model_updated(self, kind: str, body) -> None:
        """A change applied to the app's model (or a log event); screens override what they show."""
