"""Named chat templates for models without one (or to override it), rendered in plain Python.

    renderer = get_template("llama3").renderer(tokenizer, default_system=None)
    turns = renderer.render(sample)       # same Turn list as render.AutoRenderer

Each template is a handful of format strings (`{content}` is the message; `{eos}` the tokenizer's
EOS text) for: a prefix written once, the system block, a user turn (which ends with the
assistant header, i.e. the generation prompt), an assistant turn (which ends with the stop
token), tool results (observation) and tool calls (function). Templates whose model has no
end-of-turn token (chatglm3, baichuan2) use "efficient EOS" as LlamaFactory does: the label of
the token after a reply is the EOS id, and one EOS ends the sequence.

The formats follow the published chat templates of each family; tests/data/fixtures/*.jinja hold
reference Jinja versions, and tests compare every named template with `apply_chat_template`
using those. `detect(tokenizer)` finds the named template (and default system prompt) equal to a
tokenizer's own Jinja template, so `template: auto` renders at Python speed when it can.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from ftlab.errors import UserError

from .formats import ASSISTANT, FUNCTION, OBSERVATION, USER, RowError, Sample
from .render import Turn, train_span

QWEN_TOOLS = ("\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
              "You are provided with function signatures within <tools></tools> XML tags:\n<tools>{tools}"
              "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
              "within <tool_call></tool_call> XML tags:\n<tool_call>\n{{\"name\": <function-name>, "
              "\"arguments\": <args-json-object>}}\n</tool_call>")
LLAMA3_TOOLS = ("You have access to the following functions. To call a function, please respond with JSON "
                "for a function call. Respond in the format {{\"name\": function name, \"parameters\": "
                "dictionary of argument name and its value}}. Do not use variables.\n\n{tools}")


@dataclass(frozen=True)
class Template:
    name: str
    user: str
    assistant: str
    stop: str
    system: str = "{content}"
    prefix: str = ""
    default_system: str | None = None
    system_in_user: str | None = None   # fold the system prompt into the first user turn
    observation: str | None = None
    function: str | None = None
    strip: bool = False
    efficient_eos: bool = False
    tool_style: str | None = None       # "qwen" | "llama3"

    def renderer(self, tokenizer, default_system: str | None = None) -> "TemplateRenderer":
        return TemplateRenderer(self, tokenizer, default_system)


def _chatml(name: str, default_system: str | None = None, tools: bool = False) -> Template:
    return Template(
        name=name, default_system=default_system, stop="<|im_end|>",
        system="<|im_start|>system\n{content}<|im_end|>\n",
        user="<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n",
        assistant="{content}<|im_end|>\n",
        observation=("<|im_start|>user\n<tool_response>\n{content}\n</tool_response><|im_end|>\n"
                     "<|im_start|>assistant\n") if tools else None,
        function="{content}<|im_end|>\n" if tools else None,
        tool_style="qwen" if tools else None,
    )


TEMPLATES: dict[str, Template] = {t.name: t for t in [
    _chatml("chatml"),
    _chatml("qwen", "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.", tools=True),
    _chatml("yi"),
    Template(
        name="llama3", prefix="<|begin_of_text|>", stop="<|eot_id|>", strip=True, tool_style="llama3",
        system="<|start_header_id|>system<|end_header_id|>\n\n{content}<|eot_id|>",
        user="<|start_header_id|>user<|end_header_id|>\n\n{content}<|eot_id|>"
             "<|start_header_id|>assistant<|end_header_id|>\n\n",
        assistant="{content}<|eot_id|>",
        observation="<|start_header_id|>ipython<|end_header_id|>\n\n{content}<|eot_id|>"
                    "<|start_header_id|>assistant<|end_header_id|>\n\n",
        function="{content}<|eot_id|>",
    ),
    Template(name="llama2", stop="</s>", strip=True, user="<s>[INST] {content} [/INST]",
             assistant=" {content} </s>", system_in_user="<<SYS>>\n{system}\n<</SYS>>\n\n{content}"),
    Template(name="mistral", prefix="<s>", stop="</s>", user="[INST] {content} [/INST]",
             assistant="{content}</s>", system_in_user="{system}\n\n{content}"),
    Template(name="gemma", prefix="<bos>", stop="<end_of_turn>", strip=True,
             user="<start_of_turn>user\n{content}<end_of_turn>\n<start_of_turn>model\n",
             assistant="{content}<end_of_turn>\n", system_in_user="{system}\n\n{content}"),
    Template(name="chatglm3", prefix="[gMASK]sop", stop="{eos}", efficient_eos=True,
             system="<|system|>\n {content}", user="<|user|>\n {content}<|assistant|>",
             assistant="\n {content}", observation="<|observation|>\n {content}<|assistant|>"),
    Template(name="baichuan2", stop="{eos}", efficient_eos=True, system="{content}",
             user="<reserved_106>{content}<reserved_107>", assistant="{content}"),
    Template(name="alpaca", stop="{eos}", system="{content}\n\n",
             default_system="Below is an instruction that describes a task. "
                            "Write a response that appropriately completes the request.",
             user="### Instruction:\n{content}\n\n### Response:\n", assistant="{content}{eos}\n\n"),
    Template(name="default", stop="{eos}", system="System: {content}\n",
             user="Human: {content}\nAssistant:", assistant="{content}{eos}\n"),
    Template(name="empty", stop="{eos}", user="{content}", assistant="{content}{eos}"),
    # LlamaFactory's template for k-shot evaluation of base models: "Q1 A1\n\nQ2 A2\n\nQ3"
    Template(name="fewshot", stop="{eos}", efficient_eos=True, user="{content}", assistant="{content}\n\n"),
]}


def get_template(name: str) -> Template:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise UserError(f"data.template: unknown template {name!r}; expected auto or one of "
                        f"{', '.join(TEMPLATES)}") from None


def _calls(content: str, style: str) -> str:
    """A function message (JSON of one call or a list) in the template's tool-call syntax."""
    try:
        value = json.loads(content)
    except json.JSONDecodeError:
        raise RowError("function call is not JSON") from None
    calls = value if isinstance(value, list) else [value]
    out = []
    for call in calls:
        if isinstance(call, dict) and "function" in call:  # OpenAI tool_calls entry
            call = call["function"]
        if not isinstance(call, dict) or "name" not in call:
            raise RowError("function call without a name")
        args = call.get("arguments", call.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                pass
        if style == "qwen":
            out.append("<tool_call>\n" + json.dumps({"name": call["name"], "arguments": args},
                                                    ensure_ascii=False) + "\n</tool_call>")
        else:
            out.append(json.dumps({"name": call["name"], "parameters": args}, ensure_ascii=False))
    return "\n".join(out)


def _tool_list(tools: str) -> list:
    try:
        value = json.loads(tools)
    except json.JSONDecodeError:
        raise RowError("tools is not JSON") from None
    return value if isinstance(value, list) else [value]


class TemplateRenderer:
    """Renders samples through a named `Template` (see render.AutoRenderer for the interface)."""

    def __init__(self, template: Template, tokenizer, default_system: str | None = None):
        eos = tokenizer.eos_token or ""
        fill = lambda s: None if s is None else s.replace("{eos}", eos)  # noqa: E731
        self.t = replace(template, assistant=fill(template.assistant), stop=fill(template.stop),
                         function=fill(template.function))
        self.name = template.name
        self.efficient_eos = template.efficient_eos
        self.default_system = default_system if default_system is not None else template.default_system
        self.stop = self.t.stop

    def _content(self, text: str) -> str:
        return text.strip() if self.t.strip else text

    def _system(self, sample: Sample) -> str | None:
        t = self.t
        system = sample.system or self.default_system
        if sample.tools and t.tool_style:
            tools = _tool_list(sample.tools)
            if t.tool_style == "qwen":
                listed = "".join("\n" + json.dumps(tool, ensure_ascii=False) for tool in tools)
                system = (system or "") + QWEN_TOOLS.format(tools=listed)
            else:
                listed = "\n\n".join(json.dumps(tool, ensure_ascii=False, indent=4) for tool in tools)
                system = (system + "\n\n" if system else "") + LLAMA3_TOOLS.format(tools=listed)
        return system

    def _prompt(self, role: str, content: str, first: bool, system: str | None) -> str:
        t = self.t
        if role == OBSERVATION:
            if t.observation is None:
                return t.user.format(content=self._content(content))
            return t.observation.format(content=content)
        if first and system and t.system_in_user:
            content = t.system_in_user.format(system=system, content=content)
        return t.user.format(content=self._content(content))

    def _response(self, role: str, content: str) -> str:
        t = self.t
        if role == FUNCTION and t.tool_style:
            return (t.function or t.assistant).format(content=_calls(content, t.tool_style))
        return t.assistant.format(content=self._content(content))

    def _head(self, system: str | None) -> str:
        t = self.t
        head = t.prefix
        if system and not t.system_in_user:
            head += t.system.format(content=system)
        return head

    def render(self, sample: Sample) -> list[Turn]:
        system = self._system(sample)
        pending = self._head(system)
        messages = sample.messages
        turns = []
        for index in range(0, len(messages) - 1, 2):
            (p_role, p_text), (r_role, r_text) = messages[index], messages[index + 1]
            prompt = pending + self._prompt(p_role, p_text, index == 0, system)
            response = self._response(r_role, r_text)
            keep = len(response) if self.efficient_eos else train_span(response, self.stop)
            turns.append(Turn(prompt=prompt, response=response, train_chars=keep))
            pending = ""
        if not turns:
            raise RowError("no assistant turn")
        return turns

    def render_prompt(self, sample: Sample) -> str:
        """Prompt text of a conversation that ends with a user turn (generation prompt included)."""
        system = self._system(sample)
        parts = [self._head(system)]
        for index, (role, text) in enumerate(sample.messages):
            if index % 2 == 0:
                parts.append(self._prompt(role, text, index == 0, system))
            else:
                parts.append(self._response(role, text))
        return "".join(parts)

    def render_response(self, prompt_sample: Sample, response: tuple[str, str]) -> tuple[str, int]:
        text = self._response(*response)
        return text, (len(text) if self.efficient_eos else train_span(text, self.stop))


# ----------------------------------------------------------------------------- auto-detection

_PROBES = [
    Sample(messages=[(USER, "Hello there"), (ASSISTANT, "Hi! How can I help?")]),
    Sample(messages=[(USER, "First q"), (ASSISTANT, "First a"), (USER, "Second q"), (ASSISTANT, "Second a")],
           system="Be brief."),
]


def _jinja(tokenizer, sample: Sample, generation: bool = False, drop_last: bool = False) -> str:
    messages = [{"role": "system", "content": sample.system}] if sample.system else []
    messages += [{"role": "user" if r == USER else "assistant", "content": c} for r, c in sample.messages]
    if drop_last:
        messages = messages[:-1]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)


def detect(tokenizer, default_system: str | None = None) -> TemplateRenderer | None:
    """The named template that renders exactly like the tokenizer's own (probed), or None."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    try:
        rendered = [_jinja(tokenizer, p) for p in _PROBES]
        prompt = _jinja(tokenizer, _PROBES[1], generation=True, drop_last=True)
    except Exception:  # a template that rejects the probes (e.g. no system role) is not detected
        return None
    for template in TEMPLATES.values():
        if template.efficient_eos:
            continue
        # the tokenizer's default system prompt, if it writes one when the sample has none
        own_default = None
        head = template.prefix + template.system.split("{content}")[0]
        tail = template.system.split("{content}")[1] if "{content}" in template.system else ""
        if not template.system_in_user and head and rendered[0].startswith(head) and tail:
            end = rendered[0].find(tail, len(head))
            if end > 0:
                own_default = rendered[0][len(head):end]
        candidate = replace(template, default_system=own_default)
        renderer = candidate.renderer(tokenizer, default_system)
        base = candidate.renderer(tokenizer, None)
        try:
            ok = all("".join(t.prompt + t.response for t in base.render(p)) == r
                     for p, r in zip(_PROBES, rendered))
            ok = ok and base.render_prompt(Sample(messages=_PROBES[1].messages[:-1],
                                                  system=_PROBES[1].system)) == prompt
        except RowError:
            ok = False
        if ok:
            return renderer
    return None
