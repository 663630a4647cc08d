"""Sampling parameters of one request and the events an engine sends back (torch-free).

Every backend takes `(prompt_ids, SamplingParams, on_event)` and calls `on_event(Event)` from its
own thread, once per new piece of text of each choice and once more with `finish_reason` set.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SamplingParams:
    max_tokens: int = 256
    temperature: float = 0.0  # 0 → greedy
    top_p: float = 1.0
    n: int = 1
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    # text forced at the start of the answer (already part of the prompt); counted as output text
    prefix: str = ""
    ignore_eos: bool = False  # benchmarks: always generate max_tokens

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass
class Event:
    """New text of one choice; the last event of a choice has `finish_reason` ("stop" | "length")."""

    request_id: str
    index: int
    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0  # tokens generated so far for this choice
    error: str | None = None  # set when the engine failed on this request


class EngineError(RuntimeError):
    """The engine could not run a request (bad length, engine stopped)."""
