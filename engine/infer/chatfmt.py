"""Prompts from OpenAI chat messages, and tool calls parsed back out of the model's answer.

Templates that know tools (their source mentions `tools`, e.g. Qwen2.5, Llama 3.1) get the tool
definitions and tool messages as they are. Templates without a tools section (SmolLM2, plain
ChatML) get the Hermes/Qwen convention, which is what ChatML-family models are tuned on: the
functions as JSON inside `<tools></tools>` in the system message, calls answered as
`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, results passed back in a user turn
inside `<tool_response></tool_response>`. `parse_tool_calls` reads the calls back.

A named `tool_choice` is honoured by starting the answer with the opening of that call
(`<tool_call>\n{"name": "f", "arguments": `): the model writes only the arguments.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass

TOOL_OPEN, TOOL_CLOSE = "<tool_call>", "</tool_call>"
_CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


def native_tools(tokenizer) -> bool:
    return "tools" in (getattr(tokenizer, "chat_template", None) or "")


def tools_system_text(tools: list[dict]) -> str:
    listing = "\n".join(json.dumps(t.get("function", t), ensure_ascii=False) for t in tools)
    return ("# Tools\n\nYou can call functions to help answer. Their signatures, as JSON, are inside "
            f"<tools></tools>:\n<tools>\n{listing}\n</tools>\n\n"
            "To call a function, answer with one JSON object per call, holding the function's name and "
            "its arguments, inside <tool_call></tool_call> tags:\n"
            '<tool_call>\n{"name": "function name", "arguments": {"argument": "value"}}\n</tool_call>')


def _content_text(content) -> str:
    """Message content as text (a string, or a list of OpenAI content parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def _call_text(call: dict) -> str:
    function = call.get("function", {})
    arguments = function.get("arguments", "{}")
    try:
        arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        pass
    body = json.dumps({"name": function.get("name", ""), "arguments": arguments}, ensure_ascii=False)
    return f"{TOOL_OPEN}\n{body}\n{TOOL_CLOSE}"


def hermes_messages(messages: list[dict], tools: list[dict] | None) -> list[dict]:
    """Rewrite OpenAI messages (tools, tool_calls, tool results) for a template without tools."""
    out: list[dict] = []
    for message in messages:
        role = message["role"]
        text = _content_text(message.get("content"))
        if role == "developer":
            role = "system"
        if role == "assistant" and message.get("tool_calls"):
            calls = "\n".join(_call_text(c) for c in message["tool_calls"])
            text = f"{text}\n{calls}" if text else calls
        if role == "tool":
            block = f"<tool_response>\n{text}\n</tool_response>"
            if out and out[-1]["role"] == "user" and out[-1].get("_tool"):
                out[-1]["content"] += "\n" + block
                continue
            out.append({"role": "user", "content": block, "_tool": True})
            continue
        out.append({"role": role, "content": text})
    if tools:
        block = tools_system_text(tools)
        if out and out[0]["role"] == "system":
            out[0]["content"] = f"{out[0]['content']}\n\n{block}" if out[0]["content"] else block
        else:
            out.insert(0, {"role": "system", "content": block})
    return [{k: v for k, v in m.items() if not k.startswith("_")} for m in out]


def _native_messages(messages: list[dict]) -> list[dict]:
    out = []
    for message in messages:
        message = dict(message)
        message["content"] = _content_text(message.get("content"))
        if message.get("tool_calls"):
            calls = []
            for call in message["tool_calls"]:
                function = dict(call.get("function", {}))
                try:
                    function["arguments"] = json.loads(function.get("arguments") or "{}")
                except (TypeError, ValueError):
                    pass
                calls.append({"type": "function", "id": call.get("id"), "function": function})
            message["tool_calls"] = calls
        out.append(message)
    return out


def forced_prefix(tool_choice) -> str:
    """Start of the answer for a named or "required" tool_choice, else ''."""
    if tool_choice == "required":
        return f'{TOOL_OPEN}\n{{"name": "'
    if isinstance(tool_choice, dict):
        name = tool_choice.get("function", {}).get("name")
        if name:
            return f'{TOOL_OPEN}\n{{"name": {json.dumps(name)}, "arguments": '
    return ""


def render_chat(tokenizer, messages: list[dict], tools: list[dict] | None = None, tool_choice=None) -> str:
    """The prompt text for `messages` (ends with the assistant turn's opening, plus a forced prefix)."""
    use_tools = tools if tools and tool_choice != "none" else None
    if native_tools(tokenizer):
        text = tokenizer.apply_chat_template(_native_messages(messages), tools=use_tools,
                                             add_generation_prompt=True, tokenize=False)
    else:
        text = tokenizer.apply_chat_template(hermes_messages(messages, use_tools),
                                             add_generation_prompt=True, tokenize=False)
    return text + (forced_prefix(tool_choice) if use_tools else "")


@dataclass
class ParsedAnswer:
    content: str | None
    tool_calls: list[dict]


def parse_tool_calls(text: str) -> ParsedAnswer:
    """Split an answer into plain content and OpenAI `tool_calls` (arguments as a JSON string)."""
    if TOOL_OPEN not in text:
        return ParsedAnswer(text, [])
    calls = []
    for match in _CALL.finditer(text):
        try:
            body = json.loads(match.group(1))
        except ValueError:
            continue
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            continue
        arguments = body.get("arguments", body.get("parameters", {}))
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        calls.append({"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                      "function": {"name": body["name"], "arguments": arguments}})
    if not calls:
        return ParsedAnswer(text, [])
    content = _CALL.sub("", text).strip()
    return ParsedAnswer(content or None, calls)
