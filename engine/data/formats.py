"""Turn a raw row (alpaca, sharegpt, OpenAI messages, plain text) into one internal `Sample`.

    sample = to_sample(spec, row)        # raises RowError("missing column 'output'") when unusable

The internal form is a system prompt, tools, and a list of (role, content) messages with roles
user, assistant, observation (a tool result) and function (an assistant's tool call); preference
rows add `chosen`/`rejected` responses and KTO rows a `kto_tag`. The conversion follows
LlamaFactory's `convert_alpaca` / `convert_sharegpt`, so existing dataset_info.json files mean
the same, but an unusable row is reported with its reason instead of silently dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .registry import OPENAI_TAGS, DatasetSpec

USER, ASSISTANT, OBSERVATION, FUNCTION = "user", "assistant", "observation", "function"
_PROMPT_ROLES = (USER, OBSERVATION)
_RESPONSE_ROLES = (ASSISTANT, FUNCTION)


class RowError(Exception):
    """A row that cannot be used; `reason` is a short, countable category."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass
class Sample:
    messages: list[tuple[str, str]]
    system: str | None = None
    tools: str | None = None
    chosen: tuple[str, str] | None = None
    rejected: tuple[str, str] | None = None
    kto_tag: bool | None = None
    text: str | None = None   # pt stage: the document
    extra: dict = field(default_factory=dict)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _get(row: dict, column: str | None, required: bool = False) -> Any:
    if column is None:
        return None
    if column not in row or (required and row[column] is None):
        if required:
            raise RowError(f"missing column '{column}'")
        return None
    return row[column]


def _tools(row: dict, spec: DatasetSpec) -> str | None:
    tools = _get(row, spec.column("tools"))
    if tools in (None, "", []):
        return None
    return tools if isinstance(tools, str) else json.dumps(tools, ensure_ascii=False)


def _alpaca(spec: DatasetSpec, row: dict, stage: str) -> Sample:
    messages: list[tuple[str, str]] = []
    history = _get(row, spec.column("history"))
    if history:
        if not isinstance(history, list):
            raise RowError("history is not a list of [query, response] pairs")
        for pair in history:
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise RowError("history is not a list of [query, response] pairs")
            messages += [(USER, _text(pair[0])), (ASSISTANT, _text(pair[1]))]
    prompt = _text(_get(row, spec.column("prompt"), required=True))
    query = _text(_get(row, spec.column("query")))
    content = "\n".join(part for part in (prompt, query) if part)
    if stage == "pt":
        return Sample(messages=[], text=content, system=None)
    if not content.strip():
        raise RowError("empty prompt")
    messages.append((USER, content))
    sample = Sample(messages=messages, system=_text(_get(row, spec.column("system"))) or None,
                    tools=_tools(row, spec))
    if spec.ranking:
        chosen = _text(_get(row, spec.column("chosen") or "chosen", required=True))
        rejected = _text(_get(row, spec.column("rejected") or "rejected", required=True))
        if not chosen.strip() or not rejected.strip():
            raise RowError("empty response")
        sample.chosen, sample.rejected = (ASSISTANT, chosen), (ASSISTANT, rejected)
        return sample
    response_col = spec.column("response")
    response = _get(row, response_col, required=stage not in ("predict", "eval", "ppo"))
    if isinstance(response, list):  # LlamaFactory's list-of-responses form: the first one
        response = response[0] if response else ""
    response = _text(response)
    if spec.column("kto_tag"):
        tag = _get(row, spec.column("kto_tag"), required=True)
        sample.kto_tag = _bool(tag)
    if response.strip():
        messages.append((ASSISTANT, response))
    elif stage not in ("predict", "eval", "ppo"):
        raise RowError("empty response")
    return sample


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "desirable"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "undesirable"):
        return False
    raise RowError("kto_tag is not a boolean")


def _tags_for(spec: DatasetSpec, messages: list) -> dict[str, str]:
    tags = spec.tags
    # OpenAI-style messages registered as sharegpt with the default tags: recognise role/content
    first = messages[0] if messages else None
    if (spec.formatting == "sharegpt" and isinstance(first, dict) and tags.get("role_tag") == "from"
            and "from" not in first and "role" in first and "content" in first):
        return OPENAI_TAGS
    return tags


def _message_role(message: Any, tags: dict[str, str], role_map: dict[str, str]) -> tuple[str, str]:
    if not isinstance(message, dict):
        raise RowError("message is not an object")
    tag = message.get(tags["role_tag"])
    if tag is None:
        raise RowError(f"missing column '{tags['role_tag']}'", "in a message")
    role = role_map.get(tag)
    if role is None:
        raise RowError("unknown role tag", f"{tag!r}")
    content = message.get(tags["content_tag"])
    if content is None and role == FUNCTION and message.get("tool_calls"):
        content = message["tool_calls"]
    if content is None and tags["content_tag"] not in message and not message.get("tool_calls"):
        raise RowError(f"missing column '{tags['content_tag']}'", "in a message")
    if isinstance(content, list) and content and all(isinstance(c, dict) and "text" in c for c in content):
        content = "".join(c["text"] for c in content)  # OpenAI content parts
    return role, _text(content)


def _sharegpt(spec: DatasetSpec, row: dict, stage: str) -> Sample:
    raw = _get(row, spec.column("messages"), required=True)
    if not isinstance(raw, list):
        raise RowError(f"column '{spec.column('messages')}' is not a list of messages")
    tags = _tags_for(spec, raw)
    role_map = {tags["user_tag"]: USER, tags["assistant_tag"]: ASSISTANT,
                tags["observation_tag"]: OBSERVATION, tags["function_tag"]: FUNCTION, tags["system_tag"]: "system"}
    if tags.get("role_tag") == "role":
        role_map.setdefault("tool", OBSERVATION)
    system = _text(_get(row, spec.column("system"))) or None
    messages = []
    for index, message in enumerate(raw):
        role, content = _message_role(message, tags, role_map)
        if role == "system":
            if index != 0:
                raise RowError("system message after the first turn")
            system = content or None
            continue
        # an assistant message that carries OpenAI tool_calls becomes a function call
        if role == ASSISTANT and isinstance(message, dict) and message.get("tool_calls") and not content:
            role, content = FUNCTION, _text(message["tool_calls"])
        messages.append((role, content))
    if stage == "pt":
        return Sample(messages=[], text=messages[0][1] if messages else "")
    if not messages:
        raise RowError("no messages")
    for index, (role, content) in enumerate(messages):
        expected = _PROMPT_ROLES if index % 2 == 0 else _RESPONSE_ROLES
        if role not in expected:
            if role in _PROMPT_ROLES:
                raise RowError("two user turns in a row", f"message {index + 1}")
            if index == 0:
                raise RowError("conversation starts with an assistant turn")
            raise RowError("two assistant turns in a row", f"message {index + 1}")
    sample = Sample(messages=messages, system=system, tools=_tools(row, spec))
    if spec.ranking:
        if len(messages) % 2 != 1:
            raise RowError("preference row must end with a user turn")
        pairs = []
        for key in ("chosen", "rejected"):
            value = _get(row, spec.column(key) or key, required=True)
            role, content = (_message_role(value, tags, role_map) if isinstance(value, dict)
                             else (ASSISTANT, _text(value)))
            if role not in _RESPONSE_ROLES:
                raise RowError(f"{key} is not an assistant message")
            if not content.strip():
                raise RowError("empty response")
            pairs.append((role, content))
        sample.chosen, sample.rejected = pairs
        return sample
    if spec.column("kto_tag"):
        sample.kto_tag = _bool(_get(row, spec.column("kto_tag"), required=True))
    unsupervised = stage in ("predict", "eval", "ppo")
    if len(messages) % 2 != 0 and not unsupervised:
        raise RowError("conversation does not end with an assistant turn")
    if not unsupervised and not messages[-1][1].strip():
        raise RowError("empty response")
    return sample


def to_sample(spec: DatasetSpec, row: Any, stage: str) -> Sample:
    """Convert one raw row; raises `RowError` when the row cannot be used for `stage`."""
    if not isinstance(row, dict):
        raise RowError("row is not an object")
    if spec.formatting == "alpaca":
        return _alpaca(spec, row, stage)
    return _sharegpt(spec, row, stage)
