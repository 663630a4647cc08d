"""New run: a form generated from the profile schema, started from a profile in profiles/ or a
previous job, validated as you type (the messages of `ftctl validate`), with the VRAM estimate,
submitted to ftd with a device count and a priority."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from ftlab.daemon import protocol as P
from ftlab.engine.config import load_profile, resolve_paths
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from ftlab.errors import UserError

from .. import form
from ..i18n import t
from ..link import LinkDown, RemoteError
from .base import FtScreen

REPO_PROFILES = Path(__file__).resolve().parents[2] / "profiles"


def profile_files() -> list[Path]:
    found: dict[str, Path] = {}
    for folder in (Path.cwd() / "profiles", REPO_PROFILES):
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                found.setdefault(path.name, path)
    return list(found.values())


def wid(key: str) -> str:
    return "f-" + key.replace(".", "--")


class NewRunScreen(FtScreen):
    TITLE_KEY = "mode.new"
    BINDINGS: ClassVar = [Binding("ctrl+s", "submit", "key.submit"), Binding("ctrl+o", "pick_source", "key.source")]

    def __init__(self):
        super().__init__()
        self.specs = form.fields()
        self.base: dict = {}
        self.source = ""
        self.profile = None
        self.problems: list = []
        self._loading = False

    # ── layout ─────────────────────────────────────────────────────────────────────────────────
    def _source_options(self) -> list[tuple[str, str]]:
        options = [(path.name, str(path)) for path in profile_files()]
        return options + [(t("new.blank"), "blank")]

    def body(self) -> ComposeResult:
        with Vertical(id="new-top"):
            with Horizontal(classes="row"):
                yield Label(t("new.source"), classes="key", id="lbl-source")
                yield Select(self._source_options(), id="new-source", allow_blank=True, prompt=t("new.pick"), compact=True)
            with Horizontal(classes="row"):
                yield Label(t("new.name"), classes="key", id="lbl-name")
                yield Input(id="new-name", compact=True)
                yield Label(t("new.gpus"), classes="key-short", id="lbl-gpus")
                yield Input(id="new-gpus", placeholder=t("new.gpus_default"), type="integer", classes="short", compact=True)
                yield Label(t("new.priority"), classes="key-short", id="lbl-priority")
                yield Input("0", id="new-priority", type="integer", classes="short", compact=True)
            yield Static(id="new-status")
        with VerticalScroll(id="new-form"):
            section = None
            for spec in self.specs:
                if spec.section != section:
                    section = spec.section
                    yield Static(f"[b]{section or t('new.general')}[/b]", classes="section")
                with Horizontal(classes="row field"):
                    yield Label(spec.key, classes="key")
                    yield self._widget(spec)
                yield Static(spec.description, classes="hint")
                yield Static(classes="error", id=wid(spec.key) + "-err")
            yield Button(t("new.submit"), id="new-submit", variant="primary", compact=True)

    def _widget(self, spec: form.FieldSpec):
        value = spec.default
        if spec.kind == "choice":
            options = [(str(o), o) for o in spec.options]
            return Select(options, value=value if value is not None else Select.NULL, allow_blank=spec.optional,
                          id=wid(spec.key), prompt="-", compact=True)
        if spec.kind == "switch":
            return Checkbox("", bool(value), id=wid(spec.key), compact=True)
        return Input(form.to_text(spec, value), id=wid(spec.key), placeholder=t("new.default_placeholder"), compact=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.controls = {spec.key: self.query_one("#" + wid(spec.key)) for spec in self.specs}
        self.errors = {spec.key: self.query_one("#" + wid(spec.key) + "-err", Static) for spec in self.specs}
        files = profile_files()
        pending = getattr(self.app, "pending_new_run", None)
        if pending:
            self.app.pending_new_run = None
            self.load_job(pending)
        elif files:
            self.load_file(str(files[0]))
        else:
            self.load_data({}, "blank")

    def resume(self) -> None:
        pending = getattr(self.app, "pending_new_run", None)
        if pending:
            self.app.pending_new_run = None
            self.load_job(pending)

    # ── values ─────────────────────────────────────────────────────────────────────────────────
    def values(self) -> dict:
        out = {}
        for spec in self.specs:
            widget = self.controls[spec.key]
            if spec.kind == "choice":
                out[spec.key] = None if widget.value is Select.NULL else widget.value
            elif spec.kind == "switch":
                out[spec.key] = widget.value
            else:
                out[spec.key] = form.from_text(spec, widget.value)
        return out

    def set_values(self, data: dict) -> None:
        self._loading = True
        for spec in self.specs:
            value = form.get_path(data, spec.key, spec.default)
            widget = self.controls[spec.key]
            if spec.kind == "choice":
                widget.value = value if value in spec.options else (Select.NULL if spec.optional else spec.default)
            elif spec.kind == "switch":
                widget.value = bool(value)
            else:
                widget.value = form.to_text(spec, value)
        self._loading = False

    def load_data(self, data: dict, source: str, name: str = "") -> None:
        self.base, self.source = data, source
        self.set_values(data)
        self.query_one("#new-name", Input).value = name or (Path(source).stem if source != "blank" else "")
        self.revalidate()

    def load_file(self, path: str) -> None:
        try:
            loaded = load_profile(path)
            data = loaded.profile.model_dump(mode="json")
        except UserError as err:
            self.notify(str(err), severity="error", timeout=10)
            return
        self.load_data(data, path)
        select = self.query_one("#new-source", Select)
        if select.value != path:
            options = self._source_options()
            if path not in {value for _, value in options}:
                options.insert(0, (Path(path).name, path))
            with select.prevent(Select.Changed):
                select.set_options(options)
                select.value = path

    @work(exclusive=True, group="new-load-job")
    async def load_job(self, job_id: int) -> None:
        try:
            detail = await self.app.link.call(P.SHOW, {"id": job_id})
        except (LinkDown, RemoteError) as err:
            self.notify(str(err), severity="error")
            return
        self.load_data(detail.get("profile") or {}, f"job {job_id}", name=f"{detail.get('name', 'job')}-2")
        self.query_one("#new-gpus", Input).value = str(detail.get("gpus", ""))
        self.query_one("#new-priority", Input).value = str(detail.get("priority", 0))
        self.notify(t("new.from_job", id=job_id))

    # ── validation and estimate ────────────────────────────────────────────────────────────────
    def revalidate(self) -> None:
        data = form.build(self.values())
        self.profile, self.problems = form.validate(data)
        by_key: dict[str, list[str]] = {}
        general = []
        keys = {spec.key for spec in self.specs}
        for problem in self.problems:
            if problem.key in keys:
                by_key.setdefault(problem.key, []).append(problem.message)
            else:
                general.append(str(problem))
        for spec in self.specs:
            messages = by_key.get(spec.key)
            err = self.errors[spec.key]
            err.update("\n".join(messages) if messages else "")
            err.set_class(bool(messages), "shown")
        status = self.query_one("#new-status", Static)
        if self.problems:
            lines = [f"[red]{t('new.problems', n=len(self.problems))}[/]"]
            lines += [f"  {p}" for p in self.problems[:3]]
            status.update("\n".join(lines + general[3:4]))
        else:
            status.update(f"[green]{t('new.valid')}[/]  " + t("new.estimate", estimate=form.estimate(self.profile)))

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    def _changed(self, event) -> None:
        if self._loading:
            return
        control = event.control if hasattr(event, "control") else None
        if control is not None and control.id == "new-source":
            value = event.value
            if value == "blank":
                self.load_data({}, "blank")
            elif value is not Select.NULL and value:
                self.load_file(str(value))
            return
        if control is not None and control.id and control.id.startswith("f-"):
            self.revalidate()

    # ── submit ─────────────────────────────────────────────────────────────────────────────────
    @on(Button.Pressed, "#new-submit")
    def _pressed(self) -> None:
        self.action_submit()

    def action_pick_source(self) -> None:
        self.query_one("#new-source", Select).focus()

    def _int(self, widget_id: str) -> int | None:
        text = self.query_one(widget_id, Input).value.strip()
        return int(text) if text.lstrip("-").isdigit() else None

    def action_submit(self) -> None:
        self.revalidate()
        if self.problems:
            self.notify(t("new.fix_first", n=len(self.problems)), severity="error")
            return
        profile = resolve_paths(self.profile, os.getcwd())
        body = {"profile": profile.model_dump(mode="json"), "source": self.source,
                "name": self.query_one("#new-name", Input).value.strip() or None,
                "gpus": self._int("#new-gpus"), "priority": self._int("#new-priority") or 0}
        self._submit(body)

    @work(exclusive=True, group="new-submit")
    async def _submit(self, body: dict) -> None:
        try:
            reply = await self.app.link.call(P.SUBMIT, body)
        except (LinkDown, RemoteError) as err:
            self.notify(str(err), severity="error", timeout=10)
            return
        self.notify(t("new.submitted", id=reply["id"]))
        self.app.show_job(int(reply["id"]))

    def retranslate(self) -> None:
        super().retranslate()
        for lbl, key in (("#lbl-source", "new.source"), ("#lbl-name", "new.name"), ("#lbl-gpus", "new.gpus"),
                         ("#lbl-priority", "new.priority")):
            self.query_one(lbl, Label).update(t(key))
        self.query_one("#new-submit", Button).label = t("new.submit")
        self.revalidate()
