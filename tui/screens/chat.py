"""Chat: pick a base model and an adapter from a finished job, set a system prompt, and talk to it;
tokens stream in as ftd forwards them from its serve process.

The conversation goes through ftd (DESIGN.md: "ftui's chat goes through ftd"): a `chat` request
starts a reply and ftd publishes its tokens as `chat` events (`{"stream", "delta", "done"}`).
When the connected ftd has no chat service the screen says so instead of pretending.
"""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Label, Select, Static

from ftlab.daemon import protocol as P

from ..i18n import t
from ..link import LinkDown, RemoteError
from .base import FtScreen

CHAT_REQUEST = getattr(P, "CHAT", None)
CHAT_EVENT = getattr(P, "EV_CHAT", "chat")


def base_models() -> list[str]:
    from ftlab.engine.model.registry import EMBEDDED, local_models

    return list(EMBEDDED) + [name for name, _ in local_models()]


class ChatScreen(FtScreen):
    TITLE_KEY = "mode.chat"
    BINDINGS = [Binding("ctrl+l", "clear", "key.clear"), Binding("ctrl+o", "pick_model", "key.model")]

    def __init__(self):
        super().__init__()
        self.messages: list[dict] = []
        self.stream: str | None = None
        self.reply = ""

    def body(self) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Label(t("chat.model"), classes="key-short", id="lbl-model")
            yield Select([(m, m) for m in base_models()], id="chat-model", allow_blank=False, compact=True)
            yield Label(t("chat.adapter"), classes="key-short", id="lbl-adapter")
            yield Select([], id="chat-adapter", prompt=t("chat.no_adapter"), compact=True)
        with Horizontal(classes="row"):
            yield Label(t("chat.system"), classes="key-short", id="lbl-system")
            yield Input(id="chat-system", placeholder=t("chat.system_placeholder"), compact=True)
        with VerticalScroll(id="chat-log"):
            yield Static(id="chat-transcript")
        yield Input(id="chat-input", placeholder=t("chat.placeholder"))

    def on_mount(self) -> None:
        super().on_mount()
        self.refresh_adapters()
        self.render_transcript()
        self.query_one("#chat-input", Input).focus()

    def resume(self) -> None:
        self.refresh_adapters()

    def adapters(self) -> list[tuple[str, str, dict]]:
        """(label, adapter folder, job) for finished jobs that left an adapter or model."""
        out = []
        for job in self.app.model.job_list("succeeded"):
            final = Path(job.get("job_dir") or "") / "final"
            out.append((f"#{job['id']} {job.get('name', '')}", str(final), job))
        return out

    def refresh_adapters(self) -> None:
        select = self.query_one("#chat-adapter", Select)
        current = select.value
        options = [(label, path) for label, path, _ in self.adapters()]
        select.set_options(options)
        if current in {p for _, p in options}:
            select.value = current

    def model_updated(self, kind: str, body) -> None:
        if kind == P.EV_JOB and body.get("state") == "succeeded":
            self.refresh_adapters()
        elif kind == CHAT_EVENT and isinstance(body, dict) and body.get("stream") == self.stream:
            self.reply += body.get("delta", "")
            if body.get("done"):
                self.messages.append({"role": "assistant", "content": self.reply})
                self.reply, self.stream = "", None
            self.render_transcript()

    def render_transcript(self) -> None:
        from rich.markup import escape

        lines = []
        for message in self.messages:
            who = t("chat.you") if message["role"] == "user" else t("chat.assistant")
            style = "bold cyan" if message["role"] == "user" else "bold green"
            lines.append(f"[{style}]{who}:[/] {escape(message['content'])}")
        if self.stream is not None:
            lines.append(f"[bold green]{t('chat.assistant')}:[/] {escape(self.reply)}▌")
        if not lines:
            lines.append(f"[dim]{t('chat.empty')}[/]")
        self.query_one("#chat-transcript", Static).update("\n".join(lines))
        self.query_one("#chat-log", VerticalScroll).scroll_end(animate=False)

    @on(Input.Submitted, "#chat-input")
    def _send(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text or self.stream is not None:
            return
        event.input.value = ""
        self.messages.append({"role": "user", "content": text})
        self.render_transcript()
        self.ask()

    @work(exclusive=True, group="chat")
    async def ask(self) -> None:
        if CHAT_REQUEST is None:
            self.messages.append({"role": "assistant", "content": t("chat.unavailable")})
            self.render_transcript()
            return
        model = self.query_one("#chat-model", Select).value
        adapter = self.query_one("#chat-adapter", Select).value
        system = self.query_one("#chat-system", Input).value.strip()
        messages = ([{"role": "system", "content": system}] if system else []) + self.messages
        body = {"model": model, "adapter": None if adapter is Select.NULL else adapter, "messages": messages}
        try:
            reply = await self.app.link.call(CHAT_REQUEST, body, timeout=120)
        except (LinkDown, RemoteError) as err:
            self.messages.append({"role": "assistant", "content": f"[{t('chat.error')}] {err}"})
            self.render_transcript()
            return
        self.stream, self.reply = reply.get("stream"), ""
        self.render_transcript()

    def action_clear(self) -> None:
        self.messages, self.reply, self.stream = [], "", None
        self.render_transcript()

    def action_pick_model(self) -> None:
        self.query_one("#chat-model", Select).focus()

    def retranslate(self) -> None:
        super().retranslate()
        for lbl, key in (("#lbl-model", "chat.model"), ("#lbl-adapter", "chat.adapter"),
                         ("#lbl-system", "chat.system")):
            self.query_one(lbl, Label).update(t(key))
        self.query_one("#chat-input", Input).placeholder = t("chat.placeholder")
        self.query_one("#chat-system", Input).placeholder = t("chat.system_placeholder")
        self.render_transcript()
