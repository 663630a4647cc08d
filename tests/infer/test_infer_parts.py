"""Inference building blocks without a model: stop strings, tool formats, run-dir resolution, vLLM message."""

from __future__ import annotations

import json

import pytest
from ftlab.engine.infer.chatfmt import forced_prefix, hermes_messages, parse_tool_calls, render_chat
from ftlab.engine.infer.source import resolve_source

from ftlab.errors import UserError


@pytest.fixture(scope="module")
def tokenizer(smollm2_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir)


def test_stop_strings_are_held_back_and_cut(tokenizer):
    from ftlab.engine.infer.textout import TextOutput

    ids = tokenizer("Hello world. The END is near", add_special_tokens=False)["input_ids"]
    out = TextOutput(tokenizer, stop=["END"])
    shown = ""
    for token in ids:
        shown += out.add(token)
        if out.stopped:
            break
    assert out.stopped and shown == "Hello world. The "
    partial = TextOutput(tokenizer, stop=["END"])
    shown = "".join(partial.add(t) for t in tokenizer("Hello EN", add_special_tokens=False)["input_ids"])
    assert shown == "Hello " and partial.finish() == "EN"  # could have become END: held back until the end
    plain = TextOutput(tokenizer)
    assert "".join(plain.add(t) for t in ids) + plain.finish() == "Hello world. The END is near"


def test_tools_rendered_hermes_style_in_the_system_prompt(tokenizer):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    messages = [{"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'}]
    rewritten = hermes_messages(messages, tools)
    assert rewritten[0]["role"] == "system" and '"name": "get_weather"' in rewritten[0]["content"]
    assert rewritten[2]["content"] == '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    assert rewritten[3] == {"role": "user", "content": '<tool_response>\n{"temp_c": 21}\n</tool_response>'}
    text = render_chat(tokenizer, messages, tools, "auto")
    expected = tokenizer.apply_chat_template(rewritten, add_generation_prompt=True, tokenize=False)
    assert text == expected and text.endswith("<|im_start|>assistant\n")
    forced = render_chat(tokenizer, messages[:1], tools, {"type": "function", "function": {"name": "get_weather"}})
    assert forced.endswith('<tool_call>\n{"name": "get_weather", "arguments": ')
    assert render_chat(tokenizer, messages[:1], tools, "none") == render_chat(tokenizer, messages[:1])


def test_tool_calls_parsed_back():
    answer = 'Let me look.\n<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call>\n' \
             '<tool_call>{"name": "g", "arguments": {}}'
    parsed = parse_tool_calls(answer)
    assert parsed.content == "Let me look."
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in parsed.tool_calls] == \
        [("f", {"x": 1}), ("g", {})]
    assert parse_tool_calls("<tool_call>{not json</tool_call>").tool_calls == []
    assert parse_tool_calls("plain").content == "plain"
    assert forced_prefix({"type": "function", "function": {"name": "f"}}) == '<tool_call>\n{"name": "f", "arguments": '


def test_run_dir_resolves_to_adapter_and_base(tmp_path, smollm2_dir):
    run = tmp_path / "my-run"
    (run / "final").mkdir(parents=True)
    (run / "config.yaml").write_text("model:\n  name_or_path: smollm2-135m-instruct\nstage: sft\n")
    (run / "final" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "elsewhere"}))
    source = resolve_source(str(run), log=lambda *_: None)
    assert source.model_id == "my-run" and source.adapter == run / "final"
    assert source.base == smollm2_dir and source.tokenizer == smollm2_dir
    both = resolve_source("smollm2-135m-instruct", adapter=str(run), log=lambda *_: None)
    assert both.adapter == run / "final" and both.model_id == "smollm2-135m-instruct+my-run"
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "exit.json").write_text('{"status": "failed"}')
    with pytest.raises(UserError, match="no final/.*failed"):
        resolve_source(str(unfinished))
    with pytest.raises(UserError, match="not a peft adapter"):
        resolve_source("smollm2-135m-instruct", adapter=str(smollm2_dir))


def test_vllm_backend_names_the_extra_when_missing(capsys):
    import importlib.util  # vllm is not installable on these machines: the message is what users see

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    from ftlab.cli.main import main

    assert main(["serve", "smollm2-135m-instruct", "--backend", "vllm"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'ftlab[vllm]'" in err and "Traceback" not in err
