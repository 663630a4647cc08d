"""The dataset registry: LlamaFactory's `dataset_info.json`, read into typed `DatasetSpec`s.

    specs = load_registry("profiles/data", ["alpaca_demo", "identity"])

Each entry names a local file or folder (`file_name`), its `formatting` (alpaca or sharegpt),
`columns`, ShareGPT `tags` (formatting `openai` is sharegpt with OpenAI's role/content tags;
a sharegpt file whose messages use role/content is recognised as such too), `ranking` for preference data, `split` and `num_samples`. A
`hf_hub_url` entry cannot be fetched here (no hub access) and is reported as such. Every
problem in the file or the requested names is reported together, with the file and key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftlab.errors import Problem, ProblemsError, UserError

REGISTRY_FILE = "dataset_info.json"

COLUMN_KEYS = ("prompt", "query", "response", "history", "system", "tools", "messages",
               "chosen", "rejected", "kto_tag", "images", "videos", "audios")
TAG_KEYS = ("role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag",
            "function_tag", "system_tag")
# Defaults follow LlamaFactory's DatasetAttr so that existing dataset_info.json files mean the same.
ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output", "history": None,
                  "system": None, "tools": None, "chosen": None, "rejected": None, "kto_tag": None}
SHAREGPT_COLUMNS = {"messages": "conversations", "system": None, "tools": None,
                    "chosen": None, "rejected": None, "kto_tag": None}
SHAREGPT_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                 "assistant_tag": "gpt", "observation_tag": "observation", "function_tag": "function_call",
                 "system_tag": "system"}
OPENAI_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
               "observation_tag": "tool", "function_tag": "function_call", "system_tag": "system"}
_ENTRY_KEYS = {"file_name", "hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name",
               "formatting", "columns", "tags", "ranking", "split", "num_samples", "subset", "folder",
               "load_from"}


@dataclass
class DatasetSpec:
    """One registered dataset, with defaults filled in."""

    name: str
    path: Path                     # the file or folder
    formatting: str                # "alpaca" | "sharegpt" | "openai" (OpenAI messages: role/content)
    columns: dict[str, str | None]
    tags: dict[str, str] = field(default_factory=dict)
    ranking: bool = False
    split: str = "train"
    num_samples: int | None = None

    def column(self, key: str) -> str | None:
        return self.columns.get(key)


def _entry(name: str, raw: Any, root: Path, source: str, problems: list[Problem]) -> DatasetSpec | None:
    if not isinstance(raw, dict):
        problems.append(Problem(source, None, name, "each dataset entry must be a mapping"))
        return None
    unknown = sorted(set(raw) - _ENTRY_KEYS)
    for key in unknown:
        problems.append(Problem(source, None, f"{name}.{key}", "unknown key in a dataset entry"))
    if "file_name" not in raw:
        if any(k in raw for k in ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url")):
            problems.append(Problem(source, None, name, "hub datasets cannot be fetched here (no hub access); "
                                    "download the files and register them with file_name"))
        else:
            problems.append(Problem(source, None, name, "missing file_name"))
        return None
    formatting = raw.get("formatting", "alpaca")
    if formatting not in ("alpaca", "sharegpt", "openai"):
        problems.append(Problem(source, None, f"{name}.formatting",
                                f"expected alpaca, sharegpt or openai, got {formatting!r}"))
        return None
    columns_raw = raw.get("columns") or {}
    tags_raw = raw.get("tags") or {}
    if not isinstance(columns_raw, dict) or not isinstance(tags_raw, dict):
        problems.append(Problem(source, None, name, "columns and tags must be mappings"))
        return None
    for key in columns_raw:
        if key not in COLUMN_KEYS:
            problems.append(Problem(source, None, f"{name}.columns.{key}",
                                    f"unknown column key; expected one of {', '.join(COLUMN_KEYS)}"))
    for key in tags_raw:
        if key not in TAG_KEYS:
            problems.append(Problem(source, None, f"{name}.tags.{key}",
                                    f"unknown tag key; expected one of {', '.join(TAG_KEYS)}"))
    columns = dict(ALPACA_COLUMNS if formatting == "alpaca" else SHAREGPT_COLUMNS)
    if formatting == "openai":
        columns["messages"] = "messages"
    columns.update(columns_raw)
    tags = {"alpaca": {}, "sharegpt": SHAREGPT_TAGS, "openai": OPENAI_TAGS}[formatting].copy()
    tags.update(tags_raw)
    path = Path(raw["file_name"])
    if not path.is_absolute():
        path = root / path
    if not path.exists():
        problems.append(Problem(source, None, f"{name}.file_name", f"{path}: no such file or folder"))
        return None
    num = raw.get("num_samples")
    return DatasetSpec(name=name, path=path, formatting=formatting, columns=columns, tags=tags,
                       ranking=bool(raw.get("ranking", False)), split=str(raw.get("split", "train")),
                       num_samples=int(num) if num is not None else None)


def load_registry(dataset_dir: str | Path, names: list[str]) -> list[DatasetSpec]:
    """Read `<dataset_dir>/dataset_info.json` and return the specs of `names`, in order."""
    root = Path(dataset_dir)
    source = str(root / REGISTRY_FILE)
    if not names:
        raise UserError("data.dataset is empty: name at least one dataset from "
                        f"{source}")
    try:
        registry = json.loads((root / REGISTRY_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{source}: no such file (data.dataset_dir must hold dataset_info.json)") from None
    except json.JSONDecodeError as err:
        raise ProblemsError([Problem(source, err.lineno, "", f"malformed JSON: {err.msg}")],
                            title="invalid dataset registry") from None
    if not isinstance(registry, dict):
        raise ProblemsError([Problem(source, 1, "", "expected a mapping of dataset names to entries")],
                            title="invalid dataset registry")
    problems: list[Problem] = []
    specs = []
    for name in names:
        if name not in registry:
            known = ", ".join(sorted(registry)) or "none"
            problems.append(Problem(source, None, name, f"no such dataset (registered: {known})"))
            continue
        spec = _entry(name, registry[name], root, source, problems)
        if spec is not None:
            specs.append(spec)
    if problems:
        raise ProblemsError(problems, title="invalid dataset registry")
    return specs
