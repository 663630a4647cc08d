"""ftctl's command table, parser and modules stay in sync; errors are one line with exit 2."""

from __future__ import annotations

import importlib
import subprocess
import sys

from ftlab.cli.main import COMMANDS, build_parser


def test_table_and_parser_agree():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert set(subparsers.choices) == set(COMMANDS)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"ftlab.cli.{module_name}")
        assert module.__doc__ and help_text, name
        assert callable(module.add_arguments) and callable(module.run)


def test_debug_shows_the_traceback_otherwise_one_line(tmp_path):
    missing = str(tmp_path / "nope.yaml")
    plain = subprocess.run([sys.executable, "-m", "ftlab.cli", "validate", missing], capture_output=True, text=True)
    assert plain.returncode == 2 and plain.stderr.count("\n") == 1 and "Traceback" not in plain.stderr
    debug = subprocess.run([sys.executable, "-m", "ftlab.cli", "--debug", "validate", missing],
                           capture_output=True, text=True)
    assert debug.returncode == 2 and "Traceback" in debug.stderr
