"""The New-run form's model: one field per schema key, generated from `ftlab.engine.config.schema`.

Field kinds follow the annotation: a `Literal` (optional or not) is a choice, a `bool` a switch,
anything else a text box read like a `--set` value (YAML: `5` is an int, `[a, b]` a list; a
plain-string field keeps the text as it is). Hints are the schema's own field descriptions, the
same text `ftctl` prints. Validation runs `load_profile_data`, so the form shows exactly the
messages `ftctl validate` would.
"""

from __future__ import annotations

import copy
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from ftlab.engine.config import load_profile_data
from ftlab.engine.config.schema import Profile
from pydantic import BaseModel

from ftlab.errors import Problem, ProblemsError, UserError

FORM_SOURCE = "form"


@dataclass(frozen=True)
class FieldSpec:
    key: str                    # dotted key, e.g. "method.lora.rank"
    kind: str                   # "choice", "switch" or "text"
    description: str
    default: Any
    options: tuple = ()         # choices for "choice"
    optional: bool = False      # None allowed
    text_is_str: bool = False   # keep a text box's content as a string

    @property
    def section(self) -> str:
        return self.key.split(".", 1)[0] if "." in self.key else ""


def _unwrap(annotation) -> tuple[Any, bool]:
    """(annotation without None, whether None is allowed)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        if len(args) == 1:
            return args[0], optional
        return typing.Union[tuple(args)], optional  # noqa: UP007 (built at run time)
    return annotation, False


def fields(model: type[BaseModel] = Profile, prefix: str = "") -> list[FieldSpec]:
    specs: list[FieldSpec] = []
    for name, info in model.model_fields.items():
        key = prefix + name
        annotation, optional = _unwrap(info.annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            specs += fields(annotation, key + ".")
            continue
        default = info.get_default(call_default_factory=True)
        description = info.description or ""
        if typing.get_origin(annotation) is Literal:
            specs.append(FieldSpec(key, "choice", description, default, typing.get_args(annotation), optional))
        elif annotation is bool:
            specs.append(FieldSpec(key, "switch", description, default, optional=optional))
        else:
            specs.append(FieldSpec(key, "text", description, default, optional=optional,
                                   text_is_str=annotation is str))
    return specs


def get_path(data: dict, key: str, default: Any = None) -> Any:
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def set_path(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def to_text(spec: FieldSpec, value: Any) -> str:
    """How a value shows in a text box."""
    if value is None:
        return ""
    if spec.text_is_str and isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True).strip().removesuffix("\n...").strip()


def from_text(spec: FieldSpec, text: str) -> Any:
    """A text box's content as a value (None: left empty, use the default)."""
    if not text.strip():
        return None
    if spec.text_is_str:
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def build(values: dict[str, Any], base: dict | None = None) -> dict:
    """The nested profile mapping from form values (None values are left to their defaults)."""
    data = copy.deepcopy(base or {})
    for key, value in values.items():
        if value is None:
            parent = get_path(data, key.rsplit(".", 1)[0]) if "." in key else data
            if isinstance(parent, dict):
                parent.pop(key.rsplit(".", 1)[-1], None)
            continue
        set_path(data, key, value)
    return data


def validate(data: dict) -> tuple[Profile | None, list[Problem]]:
    """Validate like `ftctl validate`: (profile, []) or (None, problems)."""
    try:
        return load_profile_data(copy.deepcopy(data), FORM_SOURCE).profile, []
    except ProblemsError as err:
        return None, list(err.problems)
    except UserError as err:
        return None, [Problem(FORM_SOURCE, None, "", str(err))]


def model_shape(name_or_path: str):
    """The model's shape from its config.json (embedded model in the cache, or a local folder);
    raises `UserError` when there is none to read."""
    from pathlib import Path

    from ftlab.engine.model.estimate import read_shape
    from ftlab.engine.model.registry import EMBEDDED

    folder = EMBEDDED[name_or_path].folder if name_or_path in EMBEDDED else Path(name_or_path).expanduser()
    if not (folder / "config.json").is_file():
        raise UserError(f"no config.json for {name_or_path} here (not converted or not a local folder)")
    return read_shape(folder)


def estimate(profile: Profile) -> str:
    """The VRAM estimate of `ftctl estimate` (ftlab.engine.model.estimate, torch-free) as one line."""
    from ftlab.engine.model.estimate import estimate as estimate_memory

    try:
        shape = model_shape(profile.model.name_or_path)
    except UserError as err:
        return f"? ({err})"
    result = estimate_memory(profile, shape)
    parts = ", ".join(f"{name} {gib:.2f}" for name, gib in result.parts.items() if gib >= 0.005)
    return f"{result.total_gib:.2f} GiB per device ({parts})"
