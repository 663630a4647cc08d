"""ftui against a real ftd (CPU, tiny random llama): submit from the New-run form, watch the job
reach "succeeded" with its log lines and curves, cancel a job from the Jobs table, and survive an
ftd restart with a banner and a resync."""

from __future__ import annotations

import asyncio

import pytest
from ftlab.tui.app import FtuiApp
from ftlab.tui.screens.chat import ChatScreen
from ftlab.tui.screens.job_detail import JobScreen
from ftlab.tui.screens.new_run import NewRunScreen, wid
from textual.widgets import Input, Select

pytestmark = pytest.mark.slow


def test_submit_follow_cancel(ftd, short_dir, tiny_llama, helpers, monkeypatch):
    asyncio.run(_submit_follow_cancel(ftd, short_dir, tiny_llama, helpers, monkeypatch))


async def _submit_follow_cancel(ftd, short_dir, tiny_llama, helpers, monkeypatch):
    daemon = ftd()
    long_profile = helpers.write_profile(short_dir, tiny_llama, 100000, "long.yaml")
    short_profile = helpers.write_profile(short_dir, tiny_llama, 6, "short.yaml")
    monkeypatch.chdir(short_dir)
    app = FtuiApp(endpoint=daemon.endpoint)
    async with app.run_test(size=(120, 40)) as pilot:
        await helpers.until(pilot, lambda: app.link_state == "up", 15, "the link to ftd")
        assert app.user

        # 1. A long job from the form (submitted first, so it holds the one CPU slot).
        await pilot.press("f2")
        await helpers.until(pilot, lambda: isinstance(app.screen, NewRunScreen), 10, "the New-run screen")
        form = app.screen
        form.load_file(str(long_profile))
        await pilot.pause()
        assert not form.problems
        form.query_one("#" + wid("train.learning_rate"), Input).value = "-1"   # inline validation
        await pilot.pause()
        assert [p.key for p in form.problems] == ["train.learning_rate"]
        assert "greater than 0" in str(form.query_one("#" + wid("train.learning_rate") + "-err").render())
        form.query_one("#" + wid("train.learning_rate"), Input).value = "0.001"
        form.query_one("#new-name", Input).value = "long-one"
        form.query_one("#new-gpus", Input).value = "0"
        await pilot.pause()
        assert not form.problems
        await pilot.press("ctrl+s")
        await helpers.until(pilot, lambda: isinstance(app.screen, JobScreen), 10, "the job screen after submit")
        long_id = app.screen.job_id
        assert app.model.jobs[long_id]["name"] == "long-one"

        # 2. The short job, queued behind it.
        await pilot.press("f2")
        await helpers.until(pilot, lambda: isinstance(app.screen, NewRunScreen), 10, "the New-run screen")
        app.screen.load_file(str(short_profile))
        app.screen.query_one("#new-gpus", Input).value = "0"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await helpers.until(pilot, lambda: isinstance(app.screen, JobScreen) and app.screen.job_id != long_id, 10,
                            "the second job's screen")
        short_id = app.screen.job_id
        assert app.model.jobs[short_id]["state"] == "queued"

        # 3. Cancel the long one from the Jobs table: select its row, c, y.
        await pilot.press("escape")
        table = app.screen.table
        table.move_cursor(row=table.get_row_index(str(long_id)))
        await pilot.press("c")
        await pilot.pause()
        await pilot.press("y")
        await helpers.until(pilot, lambda: app.model.jobs[long_id]["state"] == "cancelled", 40, "the cancel")
        cells = table.get_row(str(long_id))
        assert "cancelled" in str(cells[4])

        # 4. The short job runs; open it and watch it succeed with log lines and curves.
        table.move_cursor(row=table.get_row_index(str(short_id)))
        await pilot.press("enter")
        await helpers.until(pilot, lambda: isinstance(app.screen, JobScreen), 5, "the job screen")
        screen = app.screen
        await helpers.until(pilot, lambda: app.model.jobs[short_id]["state"] == "succeeded", 90, "the job to succeed")
        await helpers.until(pilot, lambda: app.model.progress[short_id].step == 6, 10, "the last metrics")
        assert screen.log_view.line_count > 0
        assert any("step" in line or "loss" in line for line in screen.log_view.lines)
        assert len(app.model.progress[short_id].losses) == 6
        await pilot.press("slash")
        await pilot.press(*"loss", "enter")
        assert screen.log_view.hit is not None and "loss" in screen.log_view.lines[screen.log_view.hit].lower()
        await pilot.press("escape")
        jobs = app.screen
        assert "succeeded" in str(jobs.table.get_row(str(short_id))[4])
        assert jobs.table.get_row(str(short_id))[3] == "sft/lora"   # method fetched with `show`

        # 5. Filters: state cycles all → active → queued → ..., user cycles everyone → each user.
        await pilot.press("s", "s", "s", "s")                           # succeeded
        assert jobs.state_filter == "succeeded" and jobs.table.order == [short_id]
        await pilot.press("s", "s", "s", "s")                           # back to all
        assert jobs.state_filter is None and jobs.table.row_count == 2

        # 6. Resubmit with changes: r opens the form filled from the job.
        jobs.table.move_cursor(row=jobs.table.get_row_index(str(short_id)))
        await pilot.press("r")
        await helpers.until(pilot, lambda: isinstance(app.screen, NewRunScreen)
                            and app.screen.source == f"job {short_id}", 10, "the form filled from the job")
        assert app.screen.query_one("#" + wid("train.max_steps"), Input).value == "6"
        assert app.screen.query_one("#new-name", Input).value.endswith("-2")

        # 7. Chat through ftd with the adapter the short job trained (its base model is picked
        #    with it); ftd starts a serve job for it and the answer streams back as events.
        await pilot.press("f4")
        await helpers.until(pilot, lambda: isinstance(app.screen, ChatScreen), 10, "the Chat screen")
        chat = app.screen
        adapter = chat.query_one("#chat-adapter", Select)
        adapter.value = next(path for _, path, job in chat.adapters() if job["id"] == short_id)
        await helpers.until(pilot, lambda: chat.query_one("#chat-model", Select).value == str(tiny_llama), 10,
                            "the job's base model to be picked")
        chat.query_one("#chat-system", Input).value = "You are terse."
        chat.max_tokens = 12  # random weights never say <|im_end|>
        chat.query_one("#chat-input", Input).focus()
        await pilot.press(*"hello", "enter")
        await helpers.until(pilot, lambda: chat.serve_job is not None, 10, "ftd to accept the chat")
        await helpers.until(pilot, lambda: len(chat.messages) == 2, 90, "the streamed answer")
        answer = chat.messages[1]
        assert answer["role"] == "assistant" and answer["content"] and "[error]" not in answer["content"]
        serve_job = chat.serve_job
        assert app.model.jobs[serve_job]["stage"] == "serve"
        await pilot.press("ctrl+l")
        assert chat.messages == []
        app.cancel_job(serve_job)   # frees the CPU slot
        await helpers.until(pilot, lambda: app.model.jobs[serve_job]["state"] in ("cancelled", "succeeded"),
                            30, "the serve job to stop")


def test_banner_and_resync_when_ftd_restarts(ftd, short_dir, helpers):
    asyncio.run(_banner_and_resync(ftd, short_dir, helpers))


async def _banner_and_resync(ftd, short_dir, helpers):
    daemon = ftd()
    app = FtuiApp(endpoint=daemon.endpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        await helpers.until(pilot, lambda: app.link_state == "up", 15, "the link to ftd")
        first_pid = app.link.daemon_pid
        daemon.stop()
        await helpers.until(pilot, lambda: app.link_state in ("down", "connecting") and app.banner[0], 10,
                            "the 'ftd is not reachable' banner")
        assert app.banner[1]  # shown as an error
        ftd()
        await helpers.until(pilot, lambda: app.link_state == "up", 20, "the reconnect")
        assert app.link.daemon_pid != first_pid
        assert "restarted" in app.banner[0]
        assert app.screen.query_one("#banner").has_class("-shown")

        # A jump in the event sequence (lost updates) makes ftui take a fresh snapshot.
        synced, seq = app.model.synced_at, app.model.seq
        app.on_link_event("job.999", "job", seq + 5, {"id": 999, "state": "running"})
        await helpers.until(pilot, lambda: app.model.synced_at > synced, 10, "the resync after a sequence gap")
        assert 999 not in app.model.jobs and app.model.seq < seq + 5

        # Languages switch while running: F8 goes en → zh → ru → en, labels and hints follow.
        await pilot.press("f8")
        assert "任务" in str(app.screen.query_one("#title-bar").render())
        assert "取消" in str(app.screen.query_one("#hints").render())
        assert app.screen.table.headers[0] == "编号"
        await pilot.press("f8")
        assert "Задачи" in str(app.screen.query_one("#title-bar").render())
        await pilot.press("f8")
        assert "Jobs" in str(app.screen.query_one("#title-bar").render())
