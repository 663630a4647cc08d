"""Chat: pick a base model and an adapter from a finished job, set a system prompt, and talk to it;
tokens stream in as ftd forwards them from its serve process.

The conversation goes through ftd (DESIGN.md: "ftui's chat goes through ftd"; daemon/serve.py):
a `chat` request names the model (+ adapter); ftd uses the caller's serve job holding it or starts
one, answers `{"chat", "stream", "job"}` at once and publishes the answer as `chat` events
(`{"stream", "delta"}` … `{"stream", "done", "error"}`). Picking an adapter from a finished job
also picks that job's base model.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from ftlab.daemon import protocol as P
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Label, Select, Static

from ..i18n import t
from ..link import LinkDown, RemoteError
from .base import FtScreen

CHAT_REQUEST = P.CHAT
CHAT_EVENT = P.EV_CHAT


def base_models() -> list[str]:
    from ftlab.engine.model.registry import EMBEDDED, local_models

    return list(EMBEDDED) + [name for name, _ in local_models()]


class ChatScreen(FtScreen):
    TITLE_KEY = "mode.chat"
    MAX_TOKENS = 512  # per answer; a model that never says its end-of-turn token stops here
    BINDINGS: ClassVar = [Binding("ctrl+l", "clear", "key.clear"), Binding("ctrl+o", "pick_model", "key.model")]

    def __init__(self):
        super().__init__()
        self.messages: list[dict] = []
        self.stream: str | None = None
        self.serve_job: int | None = None
        self.reply = ""
        self.max_tokens = self.MAX_TOKENS

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
        self.app.chat_screen = self
        self.refresh_adapters()
        self.render_transcript()
        self.query_one("#chat-input", Input).focus()

    def resume(self) -> None:
        self.refresh_adapters()

    def adapters(self) -> list[tuple[str, str, dict]]:
        """(label, adapter folder, job) for finished jobs that left an adapter or model."""
        out = []
        for job in self.app.model.job_list("succeeded"):
            if job.get("stage") == "serve":
                continue
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
        elif kind == CHAT_EVENT and isinstance(body, dict) and self.stream and body.get("stream") == self.stream:
            self.reply += body.get("delta") or ""
            if body.get("done"):
                reply = self.reply
                if body.get("error"):
                    reply = (reply + "\n" if reply else "") + f"[{t('chat.error')}] {body['error']}"
                self.messages.append({"role": "assistant", "content": reply})
                self.reply, self.stream = "", None
            self.render_transcript()

    @on(Select.Changed, "#chat-adapter")
    def _adapter_picked(self, event: Select.Changed) -> None:
        job = next((job for _, path, job in self.adapters() if path == event.value), None)
        if job is not None:
            self.pick_base_of(int(job["id"]))

    @work(exclusive=True, group="chat-base")
    async def pick_base_of(self, job_id: int) -> None:
        """An adapter only fits its own base model: select the model the job trained."""
        try:
            shown = await self.app.link.call(P.SHOW, {"id": job_id})
        except (LinkDown, RemoteError):
            return
        base = ((shown.get("profile") or {}).get("model") or {}).get("name_or_path")
        if not base:
            return
        select = self.query_one("#chat-model", Select)
        options = [(m, m) for m in base_models()]
        if base not in {value for _, value in options}:
            options.append((base if len(base) < 40 else "…" + base[-39:], base))
        select.set_options(options)
        select.value = base

    def render_transcript(self) -> None:
        from rich.markup import escape

        lines = []
        for message in self.messages:
            who = t("chat.you") if message["role"] == "user" else t("chat.assistant")
            style = "bold cyan" if message["role"] == "user" else "bold green"
            lines.append(f"[{style}]{who}:[/] {escape(message['content'])}")
        if self.stream is not None:
            waiting = "" if self.reply else f"[dim]{t('chat.waiting', job=self.serve_job)}[/] "
            lines.append(f"[bold green]{t('chat.assistant')}:[/] {waiting}{escape(self.reply)}▌")
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
        model = self.query_one("#chat-model", Select).value
        adapter = self.query_one("#chat-adapter", Select).value
        system = self.query_one("#chat-system", Input).value.strip()
        messages = ([{"role": "system", "content": system}] if system else []) + self.messages
        body = {"model": model, "adapter": None if adapter is Select.NULL else adapter, "messages": messages,
                "max_tokens": self.max_tokens}
        try:
            reply = await self.app.link.call(CHAT_REQUEST, body, timeout=120)
        except (LinkDown, RemoteError) as err:
            self.messages.append({"role": "assistant", "content": f"[{t('chat.error')}] {err}"})
            self.render_transcript()
            return
        self.stream, self.reply, self.serve_job = reply.get("stream"), "", reply.get("job")
        self.render_transcript()

    def action_clear(self) -> None:
        self.messages, self.reply, self.stream, self.serve_job = [], "", None, None
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
