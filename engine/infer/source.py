"""What to load for `ftctl serve|chat MODEL|JOB [--adapter A]` — torch-free.

MODEL is an embedded name, a local Hugging Face folder or a hub id (`resolve_model`); it may also be
a run dir written by `ftctl run` (it holds `final/` and `config.yaml`) or an adapter folder
(`adapter_config.json`). A run dir's `final/` is either a LoRA adapter, whose base is the run's
`model.name_or_path`, or a full model. `--adapter` takes an adapter folder or a run dir.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from ftlab.errors import UserError


@dataclass(frozen=True)
class ModelSource:
    model_id: str  # the name clients use in requests ("model": ...)
    base: Path  # Hugging Face folder of the base (or full) model
    adapter: Path | None  # peft adapter folder, applied on top of `base`
    tokenizer: Path  # folder with the tokenizer (the adapter's own when it saved one)

    def describe(self) -> str:
        return f"{self.base}" + (f" + adapter {self.adapter}" if self.adapter else "")


def _has_tokenizer(folder: Path) -> bool:
    return (folder / "tokenizer_config.json").is_file() or (folder / "tokenizer.json").is_file()


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "config.yaml").is_file() or (path / "exit.json").is_file()) \
        and not (path / "config.json").is_file()


def _run_final(run_dir: Path) -> Path:
    final = run_dir / "final"
    if final.is_dir():
        return final
    status = ""
    exit_file = run_dir / "exit.json"
    if exit_file.is_file():
        try:
            status = f" (exit.json says: {json.loads(exit_file.read_text()).get('status')})"
        except (OSError, ValueError):
            pass
    raise UserError(f"run dir {run_dir} has no final/ folder: the run did not finish{status}")


def _run_base_name(run_dir: Path) -> str | None:
    config = run_dir / "config.yaml"
    if not config.is_file():
        return None
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise UserError(f"{config}: cannot read the run's resolved profile: {err}") from None
    model = data.get("model") if isinstance(data, dict) else None
    if isinstance(model, dict) and model.get("name_or_path"):
        return str(model["name_or_path"])
    return data.get("model_name_or_path") if isinstance(data, dict) else None


def _adapter_base_name(adapter: Path) -> str | None:
    try:
        return json.loads((adapter / "adapter_config.json").read_text()).get("base_model_name_or_path")
    except (OSError, ValueError) as err:
        raise UserError(f"{adapter / 'adapter_config.json'}: unreadable adapter config: {err}") from None


def _as_adapter(path: Path) -> Path:
    """An adapter folder from an adapter folder or a run dir."""
    if is_run_dir(path):
        path = _run_final(path)
    if not (path / "adapter_config.json").is_file():
        raise UserError(f"adapter {path} is not a peft adapter folder (no adapter_config.json in it)")
    return path


def _resolve_model(name: str, log) -> Path:
    from ftlab.engine.model.resolve import resolve_model

    return resolve_model(name, log=log)


def resolve_source(spec: str, adapter: str | None = None, log=print, served_name: str | None = None) -> ModelSource:
    """Folders to load for MODEL (or run dir / adapter folder) and an optional adapter."""
    path = Path(spec).expanduser()
    base: Path
    found_adapter: Path | None = None
    model_id = spec
    run_base: str | None = None
    if path.is_dir() and is_run_dir(path):
        final = _run_final(path)
        model_id = path.resolve().name
        run_base = _run_base_name(path)
        if (final / "adapter_config.json").is_file():
            found_adapter = final
        else:
            base = final
    elif path.is_dir() and (path / "adapter_config.json").is_file():
        found_adapter = path
        model_id = path.resolve().name
    if found_adapter is not None:
        base_name = run_base or _adapter_base_name(found_adapter)
        if not base_name:
            raise UserError(f"adapter {found_adapter}: cannot tell its base model "
                            f"(no config.yaml beside it and no base_model_name_or_path)")
        base = _resolve_model(base_name, log)
    elif not (path.is_dir() and is_run_dir(path)):
        base = _resolve_model(spec, log)
        if path.is_dir():
            model_id = path.resolve().name
    if adapter:
        if found_adapter is not None:
            raise UserError(f"{spec} already carries an adapter; --adapter {adapter} would be a second one")
        found_adapter = _as_adapter(Path(adapter).expanduser())
        parent = found_adapter.parent if found_adapter.name == "final" else found_adapter
        model_id = f"{model_id}+{parent.resolve().name}"
    tokenizer = found_adapter if found_adapter is not None and _has_tokenizer(found_adapter) else base
    return ModelSource(model_id=served_name or model_id, base=Path(base), adapter=found_adapter,
                       tokenizer=Path(tokenizer))
