"""Fixtures for the data pipeline tests: SmolLM2's tokenizer, a private cache, small data folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def tokenizer(smollm2_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir)


@pytest.fixture
def data_cache(tmp_path, monkeypatch):
    """Preprocessing cache in a temp folder (FTLAB_HOME), so tests never reuse each other's cache;
    the converted models stay shared (linked in)."""
    from ftlab import paths

    models = paths.models_dir()
    models.mkdir(parents=True, exist_ok=True)
    home = tmp_path / "home"
    (home / "cache").mkdir(parents=True)
    (home / "cache" / "models").symlink_to(models, target_is_directory=True)
    monkeypatch.setenv("FTLAB_HOME", str(home))
    return home / "cache" / "data"


@pytest.fixture
def make_dataset(tmp_path):
    """make_dataset({name: (entry, rows or text)}) → folder with dataset_info.json and the files."""

    def make(entries: dict, folder: Path | None = None) -> Path:
        folder = folder or tmp_path / "data"
        folder.mkdir(parents=True, exist_ok=True)
        info = {}
        for name, (entry, content) in entries.items():
            entry = dict(entry)
            file_name = entry.setdefault("file_name", f"{name}.json")
            path = folder / file_name
            if isinstance(content, str):
                path.write_text(content, encoding="utf-8")
            elif file_name.endswith(".jsonl"):
                path.write_text("".join(json.dumps(r) + "\n" for r in content), encoding="utf-8")
            elif file_name.endswith(".json"):
                path.write_text(json.dumps(content, indent=1), encoding="utf-8")
            info[name] = entry
        (folder / "dataset_info.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
        return folder

    return make
