"""Load a YAML profile into a `Profile`: line numbers, `--set` overrides, every problem at once.

    profile = load_profile("profiles/demo_lora_sft.yaml", ["train.max_steps=5"])

A LlamaFactory training YAML (flat keys) is recognised and translated first
(`llamafactory.translate`). Problems — malformed YAML, unknown keys, wrong types, bad `--set`
syntax — are collected and raised together as one `ProblemsError` naming file, line and key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ftlab.errors import Problem, ProblemsError, UserError

from . import llamafactory
from .schema import Profile

SET_SOURCE = "--set"


@dataclass
class LoadedProfile:
    """A validated profile and where it came from."""

    profile: Profile
    source: str
    flavour: str  # "ftlab" or "llamafactory"
    data: dict[str, Any] = field(default_factory=dict)  # the nested dict that validated


def _line_map(node: yaml.Node, prefix: tuple = (), lines: dict | None = None) -> dict[tuple, int]:
    """Map every key path in a composed YAML tree to its 1-based line."""
    lines = {} if lines is None else lines
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = prefix + (str(key_node.value),)
            lines[path] = key_node.start_mark.line + 1
            _line_map(value_node, path, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = prefix + (index,)
            lines[path] = item.start_mark.line + 1
            _line_map(item, path, lines)
    return lines


def read_yaml(path: str | Path) -> tuple[dict[str, Any], dict[tuple, int]]:
    """Parse a YAML mapping and its key→line map; syntax errors become one `ProblemsError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such profile file") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read profile: {err.strerror}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark else None
        reason = getattr(err, "problem", None) or str(err)
        raise ProblemsError([Problem(str(path), line, "", f"malformed YAML: {reason}")]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProblemsError([Problem(str(path), 1, "", "a profile must be a mapping of keys to values")])
    return data, _line_map(node) if node is not None else {}


def parse_set(item: str) -> tuple[list[str], Any]:
    """`a.b=value` → (["a", "b"], value), the value read as YAML (`5` is an int, `[a, b]` a list)."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ValueError(f"expected KEY=VALUE with a dotted key, got {item!r}")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return key.split("."), parsed


def apply_sets(data: dict[str, Any], sets: list[str]) -> list[Problem]:
    """Apply `--set` overrides in place; returns problems for malformed ones."""
    problems = []
    for item in sets:
        try:
            keys, value = parse_set(item)
        except ValueError as err:
            problems.append(Problem(SET_SOURCE, None, "", str(err)))
            continue
        node = data
        for key in keys[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = {}
                node[key] = child
            node = child
        node[keys[-1]] = value
    return problems


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys allowed at `loc` (the parent of an unknown key), for the error message."""
    for part in loc:
        info = model.model_fields.get(str(part))
        if info is None or not (isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)):
            return []
        model = info.annotation
    return sorted(model.model_fields)


def _problems_from_validation(err: ValidationError, source: str, lines: dict[tuple, int],
                              origins: dict[tuple, str]) -> list[Problem]:
    problems = []
    for item in err.errors(include_url=False):
        loc = tuple(p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        key = ".".join(str(p) for p in loc)
        line = None
        for depth in range(len(loc), 0, -1):
            if loc[:depth] in lines:
                line = lines[loc[:depth]]
                break
        src = origins.get(loc, source)
        if src != source:
            line = None
        if item["type"] == "extra_forbidden":
            allowed = _allowed_keys(Profile, loc[:-1])
            message = "unknown key" + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
        else:
            message = item["msg"]
            if item["type"] not in ("missing",) and "input" in item and not isinstance(item["input"], dict):
                message += f" (got {item['input']!r})"
        problems.append(Problem(src, line, key, message))
    return problems


def load_profile_data(data: dict[str, Any], source: str, lines: dict[tuple, int] | None = None,
                      sets: list[str] | None = None) -> LoadedProfile:
    """Validate an already-parsed profile mapping (used by the daemon for submitted profiles)."""
    lines = dict(lines or {})
    sets = list(sets or [])
    problems: list[Problem] = []
    flavour = "ftlab"
    origins: dict[tuple, str] = {}
    if llamafactory.looks_like(data):
        flavour = "llamafactory"
        flat_sets = [s for s in sets if "." not in s.partition("=")[0]]
        sets = [s for s in sets if s not in flat_sets]
        problems += apply_sets(data, flat_sets)
        data, lines, lf_problems = llamafactory.translate(data, lines, source)
        problems += lf_problems
    for item in sets:
        try:
            keys, _ = parse_set(item)
            origins[tuple(keys)] = SET_SOURCE
        except ValueError:
            pass
    problems += apply_sets(data, sets)
    profile = None
    try:
        profile = Profile.model_validate(data)
    except ValidationError as err:
        problems += _problems_from_validation(err, source, lines, origins)
    if problems:
        raise ProblemsError(problems, title=f"invalid profile {source}")
    return LoadedProfile(profile=profile, source=source, flavour=flavour, data=data)


def load_profile(path: str | Path, sets: list[str] | None = None) -> LoadedProfile:
    """Read, translate (if LlamaFactory), override and validate a profile file."""
    data, lines = read_yaml(path)
    return load_profile_data(data, str(path), lines, sets)


def dump_profile(profile: Profile) -> str:
    """The fully resolved profile as YAML (written as `config.yaml` next to every run)."""
    return yaml.safe_dump(profile.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def resolve_paths(profile: Profile, base: str | Path) -> Profile:
    """A copy of `profile` whose relative paths are made absolute against `base` (the caller's
    working directory), so a job started elsewhere (by ftd) reads the same files."""
    base = Path(base)
    data = profile.model_dump()

    def absolute(value: str | None) -> str | None:
        if not value:
            return value
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else (base / path).resolve())

    name = data["model"]["name_or_path"]
    if (base / name).exists() or name.startswith((".", "/", "~")):
        data["model"]["name_or_path"] = absolute(name)
    data["model"]["adapter"] = absolute(data["model"]["adapter"])
    ref = data["pref"]["ref_model"]
    if ref and ((base / ref).exists() or ref.startswith((".", "/", "~"))):
        data["pref"]["ref_model"] = absolute(ref)
    data["data"]["dataset_dir"] = absolute(data["data"]["dataset_dir"])
    data["eval"]["task_dir"] = absolute(data["eval"]["task_dir"])
    data["output"]["dir"] = absolute(data["output"]["dir"])
    resume = data["train"]["resume_from_checkpoint"]
    if resume and resume not in ("last", "true", "True"):
        data["train"]["resume_from_checkpoint"] = absolute(resume)
    return Profile.model_validate(data)
