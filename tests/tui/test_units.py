"""Fast checks: the Clone-pattern model (stale, gap, snapshot), every string in every language,
the form built from the schema, and ftui's entry points never importing torch."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from ftlab.daemon import protocol as P
from ftlab.tui import form, i18n
from ftlab.tui.state import STATES, Model, Outcome
from ftlab.tui.widgets.jobs_table import COLUMNS

TUI = Path(__file__).resolve().parents[2] / "tui"


def test_model_applies_newer_drops_stale_flags_gap():
    model = Model()
    model.apply_snapshot({"seq": 10, "jobs": [{"id": 1, "state": "queued", "owner": "ann"}], "devices": {}})
    assert model.apply_event(P.EV_JOB, 10, {"id": 1, "state": "running"}) is Outcome.STALE
    assert model.jobs[1]["state"] == "queued"
    assert model.apply_event(P.EV_JOB, 11, {"id": 1, "state": "running"}) is Outcome.APPLIED
    assert model.apply_event(P.EV_METRICS, 12, {"job": 1, "records": [
        {"event": "start", "total_steps": 4}, {"step": 1, "loss": 2.0, "lr": 1e-3}]}) is Outcome.APPLIED
    assert model.progress[1].fraction == 0.25 and model.progress[1].loss == 2.0
    assert model.apply_event(P.EV_JOB, 14, {"id": 1, "state": "failed"}) is Outcome.GAP
    assert model.jobs[1]["state"] == "running" and model.seq == 12
    model.apply_snapshot({"seq": 20, "jobs": [{"id": 1, "state": "failed", "owner": "ann"}]})
    assert model.jobs[1]["state"] == "failed" and model.progress[1].steps == [1]  # kept across resync


def _keys_used_in_code() -> set[str]:
    namespaces = {key.split(".")[0] for key in i18n.catalogue("en")}
    alternatives = "|".join(sorted(namespaces))
    pattern = re.compile(rf"""["']((?:{alternatives})\.[a-z_]+)["']""")
    used = set()
    for path in TUI.rglob("*.py"):
        used |= set(pattern.findall(path.read_text(encoding="utf-8")))
    used |= {f"state.{s}" for s in STATES} | {f"col.{c}" for c in COLUMNS}
    used |= {f"link.{s}" for s in ("connecting", "up", "down")} | {f"tab.{s}" for s in ("config", "log", "curves")}
    return used


def test_every_string_in_every_language():
    used = _keys_used_in_code()
    assert len(used) > 80
    for lang in i18n.LANGUAGES:
        catalogue = json.loads((TUI / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
        missing = sorted(used - set(catalogue))
        assert not missing, f"{lang}.json lacks {missing}"
        assert set(catalogue) == set(i18n.catalogue("en")), f"{lang}.json and en.json have different keys"
        for key, text in catalogue.items():
            fields = set(re.findall(r"{(\w+)}", i18n.catalogue("en")[key]))
            assert set(re.findall(r"{(\w+)}", text)) == fields, f"{lang}.json {key}: placeholders differ"
    i18n.set_language("ru")
    try:
        assert i18n.t("jobs.confirm_cancel", id=3, name="x") == "Отменить задачу 3 (x)?"
    finally:
        i18n.set_language("en")


def test_form_fields_come_from_the_schema_and_validate_like_ftctl():
    from ftlab.engine.config import field_docs

    specs = {spec.key: spec for spec in form.fields()}
    assert set(specs) == set(field_docs())
    assert specs["method.type"].kind == "choice" and "lora" in specs["method.type"].options
    assert specs["data.packing"].kind == "switch"
    assert form.from_text(specs["data.dataset"], "[identity, alpaca_demo]") == ["identity", "alpaca_demo"]
    assert form.from_text(specs["model.name_or_path"], "123") == "123"
    profile, problems = form.validate(form.build({"train.batch_size": 0, "method.lora.rank": 4}))
    assert profile is None
    assert [(p.source, p.key) for p in problems] == [("form", "train.batch_size")]
    assert "greater than or equal to 1" in problems[0].message


def test_entry_points_do_not_import_torch():
    code = ("import sys; import ftlab.tui.main, ftlab.tui.app, ftlab.tui.screens.new_run, ftlab.tui.screens.chat; "
            "from ftlab.tui.app import FtuiApp; FtuiApp(connect=False); "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
