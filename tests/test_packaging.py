"""Packaging: the wheel installs every folder under the ftlab namespace (never bare `daemon`,
`engine`, `tui`), the editable install imports the same names, and the light entry points never
import torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROOTS = {"ftlab": "ftlab", "ftlab.engine": "engine", "ftlab.daemon": "daemon", "ftlab.tui": "tui"}


def expected_packages() -> set[str]:
    names = set()
    for package, folder in ROOTS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / folder)
            names.add(".".join([package, *relative.parts]))
    return names


@pytest.mark.slow
def test_wheel_contains_every_subpackage_under_ftlab(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".venv", ".git", "out", "build", "*.egg-info",
                                                                "__pycache__", ".whl", ".agents"))
    result = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path),
                             str(source)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    wheel = next(tmp_path.glob("ftlab-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    packaged = {str(Path(n).parent).replace("/", ".") for n in names if n.endswith("/__init__.py")}
    assert packaged == expected_packages()
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top_level == {"ftlab"}, f"bare top-level modules in the wheel: {top_level - {'ftlab'}}"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    for script in ("ftd", "ftui", "ftctl"):
        assert f"{script} = ftlab." in text


def test_editable_install_imports_the_same_names():
    """From outside the repo (no CWD on sys.path) the installed names resolve to the repo folders
    and the bare folder names do not exist."""
    code = ("import importlib, importlib.util, json, sys; names = json.loads(sys.argv[1]); "
            "print(json.dumps({n: importlib.import_module(n).__file__ for n in names})); "
            "print(json.dumps([b for b in ('engine', 'daemon', 'tui') if importlib.util.find_spec(b)]))")
    names = sorted(expected_packages())
    result = subprocess.run([sys.executable, "-c", code, json.dumps(names)], capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr
    files_line, bare_line = result.stdout.splitlines()
    files = json.loads(files_line)
    for name, path in files.items():
        root = max((r for r in ROOTS if name == r or name.startswith(r + ".")), key=len)
        folder = ROOTS[root]
        assert Path(path).is_relative_to(REPO / folder), (name, path)
    assert json.loads(bare_line) == []


@pytest.mark.parametrize("module", ["ftlab.cli.main", "ftlab.daemon", "ftlab.tui", "ftlab.engine.config"])
def test_light_entry_points_do_not_import_torch(module):
    code = (f"import sys, importlib; m = importlib.import_module({module!r}); "
            f"getattr(m, 'build_parser', lambda: None)(); "
            f"print('torch' in sys.modules, 'transformers' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]
