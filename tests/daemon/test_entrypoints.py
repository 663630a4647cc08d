"""ftd and ftctl's job commands stay light (no torch), and a missing daemon is one line, exit 2."""

from __future__ import annotations

import subprocess
import sys

from ftlab.cli.main import COMMANDS

JOB_COMMANDS = ["submit", "jobs", "show", "logs", "cancel", "resume", "devices", "ping"]


def test_no_torch_in_ftd_or_job_commands():
    modules = ["ftlab.daemon.main", "ftlab.daemon.server", "ftlab.daemon.client", "ftlab.cli.main",
               *(f"ftlab.cli.{COMMANDS[name][0]}" for name in JOB_COMMANDS)]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
            + "from ftlab.cli.main import build_parser; build_parser()\n"
            + "from ftlab.engine.config import load_profile_data\n"  # what ftd's submit handler uses
            + "heavy = [m for m in ('torch', 'transformers', 'peft', 'trl') if m in sys.modules]\n"
            + "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_no_daemon_is_one_line_and_exit_2(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "FTLAB_HOME": str(tmp_path), "HOME": str(tmp_path),
           "FTLAB_ENDPOINT": f"ipc://{tmp_path}/nothing.sock"}
    result = subprocess.run([sys.executable, "-m", "ftlab.cli", "jobs"], capture_output=True, text=True, env=env,
                            check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "ftd is not running" in result.stderr and "start it with `ftd`" in result.stderr
