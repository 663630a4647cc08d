"""Snapshot tests: every screen at 80×24 and 160×48, rendered from fixed data (a recorded snapshot
reply, metrics and log of one job, a fixed clock) and compared with the SVGs in snapshots/.

Textual's `export_screenshot()` gives the SVG (pytest-textual-snapshot would downgrade pytest 9).
After an intended change of the UI, look at the new SVGs and rewrite them with
`FTUI_UPDATE_SNAPSHOTS=1 pytest tests/tui/test_snapshots.py`.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from conftest import LOG, METRICS, NOW, REPO, SNAPSHOT
from ftlab.tui.app import FtuiApp
from ftlab.tui.screens.job_detail import JobScreen

HERE = Path(__file__).resolve().parent / "snapshots"
SIZES = [(80, 24), (160, 48)]
SCREENS = ["jobs", "job", "new", "devices", "chat"]


async def _render_all(size: tuple[int, int]) -> dict[str, str]:
    app = FtuiApp(connect=False, clock=lambda: NOW)
    shots = {}
    async with app.run_test(size=size) as pilot:
        app.model.methods.update({3: "lora", 2: "lora", 1: "full"})  # as fetched by `show` after a snapshot
        app.on_link_snapshot(SNAPSHOT)
        app.on_link_event("job.2", "metrics", None, {"job": 2, "records": METRICS})
        await pilot.pause()
        shots["jobs"] = app.export_screenshot()
        app.push_screen(JobScreen(2))
        await pilot.pause()
        app.screen.apply_loaded({"id": 2, "profile": {"stage": "sft", "method": {"type": "lora"}}},
                                {"offset": 0, "end": len(LOG), "data": LOG}, {"records": []})
        await pilot.pause()
        shots["job"] = app.export_screenshot()
        app.pop_screen()
        await pilot.press("f2")
        await pilot.pause()
        app.screen.load_file(str(REPO / "profiles" / "demo_lora_sft.yaml"))
        await pilot.pause()
        shots["new"] = app.export_screenshot()
        await pilot.press("f3")
        await pilot.pause()
        shots["devices"] = app.export_screenshot()
        await pilot.press("f4")
        await pilot.pause()
        shots["chat"] = app.export_screenshot()
    return shots


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_screens_match_snapshots(size, ftlab_home, smollm2_dir):  # the estimate reads its config.json
    shots = asyncio.run(_render_all(size))
    update = os.environ.get("FTUI_UPDATE_SNAPSHOTS") == "1"
    mismatched = []
    for name in SCREENS:
        path = HERE / f"{name}_{size[0]}x{size[1]}.svg"
        if update or not path.exists():
            HERE.mkdir(exist_ok=True)
            path.write_text(shots[name], encoding="utf-8")
            continue
        if path.read_text(encoding="utf-8") != shots[name]:
            (HERE / f"{path.stem}.actual.svg").write_text(shots[name], encoding="utf-8")
            mismatched.append(path.name)
    assert not mismatched, (f"screens differ from their snapshots: {mismatched}; compare with the "
                            f"*.actual.svg files next to them, or rewrite with FTUI_UPDATE_SNAPSHOTS=1")
