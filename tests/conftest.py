"""Shared fixtures: the embedded model (converted once per machine), tiny random models of each
family with SmolLM2's real tokenizer, and an isolated FTLAB_HOME for state and sockets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The converted embedded model (bf16 folder in the user cache; converted once, ~25 s)."""
    from ftlab.engine.model.resolve import resolve_model

    return resolve_model("smollm2-135m-instruct", log=lambda *_: None)


@pytest.fixture(scope="session")
def tiny_model_factory(smollm2_dir, tmp_path_factory):
    """build(shape) → folder of a random-weight model of that family (cached per session)."""
    from ftlab.engine.model.synthetic import build_model

    built: dict[str, Path] = {}

    def build(shape: str = "tiny-llama") -> Path:
        if shape not in built:
            built[shape] = build_model(shape, smollm2_dir, tmp_path_factory.mktemp(shape))
        return built[shape]

    return build


@pytest.fixture
def tiny_llama(tiny_model_factory) -> Path:
    return tiny_model_factory("tiny-llama")


@pytest.fixture
def ftlab_home(tmp_path, monkeypatch) -> Path:
    """A private FTLAB_HOME for state and sockets; the model cache stays shared (XDG_CACHE_HOME)."""
    home = tmp_path / "ftlab-home"
    home.mkdir()
    from ftlab import paths

    cache = paths.cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("FTLAB_HOME", str(home))
    (home / "cache").symlink_to(cache, target_is_directory=True)
    return home


@pytest.fixture
def repo() -> Path:
    return REPO
