"""Every named template gives the same ids as `apply_chat_template` with its reference Jinja
(tests/data/fixtures/templates), trains each reply through its stop token, and `auto` renders
SmolLM2's own template exactly (through the detected named template and through Jinja)."""

from __future__ import annotations

import json
import typing

import numpy as np
import pytest

from ftlab.engine.config.schema import DataConfig
from ftlab.engine.data import prepare_dataset
from ftlab.engine.data.templates import TEMPLATES

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"

TOOLS = [{"name": "get_weather", "description": "Weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}
ROWS = [
    {"conversations": [{"from": "human", "value": "What is the capital of France?"},
                       {"from": "gpt", "value": "Paris."}]},
    {"system": "You are terse.",
     "conversations": [{"from": "human", "value": "Hi there"}, {"from": "gpt", "value": "Hello! How can I help?"},
                       {"from": "human", "value": "Count to three."}, {"from": "gpt", "value": "1, 2, 3."}]},
]
TOOL_ROW = {"tools": json.dumps(TOOLS),
            "conversations": [{"from": "human", "value": "Weather in Paris?"},
                              {"from": "function_call", "value": json.dumps(CALL)},
                              {"from": "observation", "value": "{\"temp\": 21}"},
                              {"from": "gpt", "value": "It is 21 degrees in Paris."}]}
ENTRY = {"formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system", "tools": "tools"}}


def _reference_messages(row):
    roles = {"human": "user", "gpt": "assistant", "observation": "tool"}
    out = [{"role": "system", "content": row["system"]}] if row.get("system") else []
    for m in row["conversations"]:
        if m["from"] == "function_call":
            call = json.loads(m["value"])
            out.append({"role": "assistant", "content": "",
                        "tool_calls": [{"type": "function", "function": call}]})
        else:
            out.append({"role": roles[m["from"]], "content": m["value"]})
    return out


def _reference_ids(tokenizer, name, row):
    jinja = (FIXTURES / "templates" / f"{name}.jinja").read_text().rstrip("\n")
    tools = json.loads(row["tools"]) if row.get("tools") else None
    ids = tokenizer.apply_chat_template(_reference_messages(row), chat_template=jinja, tools=tools,
                                        tokenize=True, return_dict=False)
    if TEMPLATES[name].efficient_eos:
        ids = list(ids) + [tokenizer.eos_token_id]
    return list(ids)


def _trained_runs(row):
    ids, labels = np.asarray(row["input_ids"]), np.asarray(row["labels"])
    mask = labels != -100
    runs, start = [], None
    for i, m in enumerate(mask):
        if m and start is None:
            start = i
        if not m and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(mask)))
    return ids, labels, runs


def test_schema_lists_every_template():
    field = DataConfig.model_fields["template"].annotation
    assert set(typing.get_args(field)) == {"auto", *TEMPLATES}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_named_template_matches_reference(name, tokenizer, data_cache, make_dataset):
    template = TEMPLATES[name]
    rows = ROWS + ([TOOL_ROW] if template.tool_style else [])
    folder = make_dataset({"chat": (ENTRY, rows)})
    data = DataConfig(dataset=["chat"], dataset_dir=str(folder), template=name, cutoff_len=4096)
    prepared = prepare_dataset(data, "sft", tokenizer, log=lambda *_: None)
    assert len(prepared.train) == len(rows)
    for index, row in enumerate(rows):
        encoded = prepared.train[index]
        assert list(encoded["input_ids"]) == _reference_ids(tokenizer, name, row), (name, index)
        ids, labels, runs = _trained_runs(encoded)
        replies = len([m for m in row["conversations"] if m["from"] in ("gpt", "function_call")])
        if template.efficient_eos:
            assert labels[-1] == tokenizer.eos_token_id
            continue
        assert len(runs) == replies, (name, index)
        stop = template.stop.replace("{eos}", tokenizer.eos_token)
        for start, end in runs:
            assert stop in tokenizer.decode(ids[start:end]), (name, tokenizer.decode(ids[start:end]))
            assert (labels[start:end] == ids[start:end]).all()


@pytest.mark.parametrize("force_jinja", [False, True])
def test_auto_is_smollm2_template(force_jinja, tokenizer, data_cache, make_dataset):
    folder = make_dataset({"chat": (ENTRY, ROWS)})
    # enable_thinking (ignored by SmolLM2's template) makes auto skip the fast path and use Jinja
    data = DataConfig(dataset=["chat"], dataset_dir=str(folder), enable_thinking=False if force_jinja else None)
    prepared = prepare_dataset(data, "sft", tokenizer, log=lambda *_: None)
    assert prepared.stats["template"] == ("auto" if force_jinja else "auto (chatml)")
    for index, row in enumerate(ROWS):
        expected = tokenizer.apply_chat_template(_reference_messages(row), tokenize=True, return_dict=False)
        encoded = prepared.train[index]
        assert list(encoded["input_ids"]) == list(expected)
        ids, labels, runs = _trained_runs(encoded)
        assert [tokenizer.decode(ids[s:e]) for s, e in runs] == [
            m["value"] + "<|im_end|>" for m in row["conversations"] if m["from"] == "gpt"]
