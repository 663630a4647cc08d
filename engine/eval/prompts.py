"""k-shot prompts for a multiple-choice question, rendered through the profile's chat template.

    builder = PromptBuilder(renderer, tokenizer, lang="en", max_length=8192)
    ids, shots_used = builder.build(question, subject)

The wording is LlamaFactory's (and MMLU's original): an instruction naming the subject, then each
question with its lettered choices and "Answer:" (中文: "答案："). The shots are the first n dev
questions, in file order (deterministic; LlamaFactory draws them at random per question). Each
shot is a user turn (the question) and an assistant turn (its letter); the question asked is the
last user turn, so the prompt ends with the template's assistant header and the model's next
token is the letter. The instruction is put at the front of the first user turn, as LlamaFactory
does, so models whose template has no system role work the same.

A prompt longer than `max_length` tokens drops shots from the end until it fits, then keeps its
last `max_length` tokens (the question) as a last resort; `build` reports the shots it used.
"""

from __future__ import annotations

from dataclasses import dataclass

from ftlab.engine.data.formats import ASSISTANT, USER, Sample

from .tasks import CHOICES, Question, Subject


@dataclass(frozen=True)
class Wording:
    instruction: str
    choice: str
    answer: str


WORDINGS = {
    "en": Wording("The following are multiple choice questions (with answers) about {subject}.\n\n",
                  "\n{letter}. {text}", "\nAnswer:"),
    "zh": Wording("以下是中国关于{subject}考试的单项选择题，请选出其中的正确答案。\n\n",
                  "\n{letter}. {text}", "\n答案："),
}


def format_question(question: Question, wording: Wording) -> str:
    lines = [question.question]
    lines += [wording.choice.format(letter=letter, text=text) for letter, text in zip(CHOICES, question.choices)]
    return "".join(lines) + wording.answer


def messages(question: Question, shots: list[Question], subject: Subject, lang: str) -> list[tuple[str, str]]:
    wording = WORDINGS[lang]
    out: list[tuple[str, str]] = []
    for shot in shots:
        out += [(USER, format_question(shot, wording)), (ASSISTANT, shot.answer or "")]
    out.append((USER, format_question(question, wording)))
    role, first = out[0]
    out[0] = (role, wording.instruction.format(subject=subject.title) + first)
    return out


class PromptBuilder:
    """Question → token ids of its rendered k-shot prompt."""

    def __init__(self, renderer, tokenizer, lang: str = "en", max_length: int | None = None):
        self.renderer = renderer
        self.tokenizer = tokenizer
        self.lang = lang
        self.max_length = max_length

    def text(self, question: Question, shots: list[Question], subject: Subject) -> str:
        return self.renderer.render_prompt(Sample(messages=messages(question, shots, subject, self.lang)))

    def ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def build(self, question: Question, subject: Subject) -> tuple[list[int], int]:
        shots = list(subject.dev)
        while True:
            ids = self.ids(self.text(question, shots, subject))
            if self.max_length is None or len(ids) <= self.max_length:
                return ids, len(shots)
            if not shots:
                return ids[-self.max_length:], 0
            shots.pop()
