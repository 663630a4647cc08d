"""Where ftlab keeps its files: model cache, user/system state and sockets.

`FTLAB_HOME` overrides everything (tests and CI point it at a temp folder); otherwise the
XDG base directories are used in user mode and /var/lib, /run in system mode (DESIGN.md,
"Modes and addresses").
"""

from __future__ import annotations

import os
from pathlib import Path

SYSTEM_STATE_DIR = Path("/var/lib/ftlab")
SYSTEM_RUNTIME_DIR = Path("/run/ftlab")


def _xdg(var: str, default: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / default


def home() -> Path | None:
    value = os.environ.get("FTLAB_HOME")
    return Path(value) if value else None


def cache_dir() -> Path:
    """Converted models and preprocessed data: `$FTLAB_HOME/cache` or `$XDG_CACHE_HOME/ftlab`."""
    root = home()
    return root / "cache" if root else _xdg("XDG_CACHE_HOME", ".cache") / "ftlab"


def models_dir() -> Path:
    return cache_dir() / "models"


def user_state_dir() -> Path:
    root = home()
    return root / "state" if root else _xdg("XDG_STATE_HOME", ".local/state") / "ftlab"


def user_runtime_dir() -> Path:
    """Where the user-mode daemon's socket lives: `$XDG_RUNTIME_DIR/ftlab` (or under FTLAB_HOME)."""
    root = home()
    if root:
        return root / "run"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "ftlab"
    return Path("/tmp") / f"ftlab-{os.getuid()}"


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (mode 0700) if missing; never leave state world-writable."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
