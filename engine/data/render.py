"""Render a `Sample` through a chat template into text turns with the trained character spans.

    turns = AutoRenderer(tokenizer).render(sample)   # [Turn(prompt, response, train_chars), ...]

`Turn.prompt` is everything before an assistant reply (system, user turn, the assistant header),
`Turn.response` the reply as the template writes it, of which the first `train_chars` characters
are trained: the content and the stop token, not what follows it (ChatML's trailing newline).
Concatenating every prompt and response gives exactly the template's full text, so one
tokenization of that text with offsets yields the same ids as `tokenizer.apply_chat_template`.

`AutoRenderer` uses the tokenizer's own Jinja chat template: it renders growing prefixes of the
conversation (with and without the generation prompt) and takes the differences, which works for
any template whose rendering of a prefix is a prefix of the whole (checked; otherwise a clear
error asks for a named template).
"""

from __future__ import annotations

from dataclasses import dataclass

from ftlab.errors import UserError

from .formats import ASSISTANT, FUNCTION, OBSERVATION, USER, RowError, Sample


@dataclass
class Turn:
    prompt: str
    response: str
    train_chars: int


def _jinja_messages(sample: Sample, system: str | None) -> list[dict]:
    out = []
    if system:
        out.append({"role": "system", "content": system})
    for role, content in sample.messages:
        if role == USER:
            out.append({"role": "user", "content": content})
        elif role == OBSERVATION:
            out.append({"role": "tool", "content": content})
        elif role in (ASSISTANT, FUNCTION):
            out.append({"role": "assistant", "content": content})
    return out


def train_span(response: str, stop: str | None, content: str | None = None) -> int:
    """Characters of `response` to train on: up to and including the last stop token; without
    one, the reply as written minus the whitespace the template adds after the content."""
    if stop:
        at = response.rfind(stop)
        if at >= 0:
            return at + len(stop)
    if content is not None:
        end = response.rfind(content)
        if end >= 0:
            return max(end + len(content), len(response.rstrip()))
    return len(response)


class AutoRenderer:
    """The tokenizer's own chat template (`template: auto`)."""

    name = "auto"

    def __init__(self, tokenizer, default_system: str | None = None, enable_thinking: bool | None = None):
        if not getattr(tokenizer, "chat_template", None):
            raise UserError("data.template is auto but the tokenizer has no chat template; "
                            "choose a named template (e.g. data.template: chatml, llama3, alpaca, empty)")
        self.tokenizer = tokenizer
        self.default_system = default_system
        self.stop = tokenizer.eos_token
        self.kwargs = {} if enable_thinking is None else {"enable_thinking": enable_thinking}

    def _render(self, messages: list[dict], generation: bool, tools) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation,
                                                  tools=tools, **self.kwargs)

    def render(self, sample: Sample, responses: list[tuple[str, str]] | None = None) -> list[Turn]:
        """Turns of a supervised conversation (it ends with an assistant message)."""
        import json

        tools = json.loads(sample.tools) if sample.tools else None
        if tools is not None and not isinstance(tools, list):
            tools = [tools]
        msgs = _jinja_messages(sample, sample.system or self.default_system)
        turns: list[Turn] = []
        done = ""
        for index, message in enumerate(msgs):
            if message["role"] != "assistant":
                continue
            prefix = self._render(msgs[:index], True, tools)
            full = self._render(msgs[: index + 1], False, tools)
            if not prefix.startswith(done) or not full.startswith(prefix):
                raise UserError("the tokenizer's chat template does not render a conversation prefix as a "
                                "prefix of the whole (it rewrites earlier turns); choose a named template "
                                "with data.template")
            response = full[len(prefix):]
            turns.append(Turn(prompt=prefix[len(done):], response=response,
                              train_chars=train_span(response, self.stop, message["content"])))
            done = full
        if not turns:
            raise RowError("no assistant turn")
        whole = self._render(msgs, False, tools)
        if whole != done:
            if not whole.startswith(done):
                raise UserError("the tokenizer's chat template is not prefix-stable; choose a named template")
            last = turns[-1]
            last.response += whole[len(done):]
        return turns

    def render_prompt(self, sample: Sample) -> str:
        """The prompt text of a conversation ending with a user turn, with the generation prompt."""
        import json

        tools = json.loads(sample.tools) if sample.tools else None
        msgs = _jinja_messages(sample, sample.system or self.default_system)
        return self._render(msgs, True, tools)

    def render_response(self, prompt_sample: Sample, response: tuple[str, str]) -> tuple[str, int]:
        """(response text, trained chars) of one reply appended to a prompt-only sample."""
        full = Sample(messages=prompt_sample.messages + [response], system=prompt_sample.system,
                      tools=prompt_sample.tools)
        turns = self.render(full)
        return turns[-1].response, turns[-1].train_chars
