"""Read a multiple-choice benchmark from a local folder, in the layout its authors publish.

    task = load_task(task_dir="evaluation", task="mmlu_test", subjects=[], max_samples=None, n_shot=5)
    for subject in task.subjects:  subject.dev (the shots), subject.items (the questions)

Layouts, detected from each file's first row:
  mmlu   `{dev,val,test}/{subject}_{split}.csv`, no header, columns question,A,B,C,D,answer
  ceval  `{dev,val,test}/{subject}_{split}.csv`, header `id,question,A,B,C,D,answer,explanation`
  cmmlu  `{dev,test}/{subject}.csv`, header `,Question,A,B,C,D,Answer` (first column: row index)

`task` is `NAME` or `NAME_SPLIT` as in LlamaFactory (`mmlu_test`, `cmmlu_test`,
`ceval_validation`); the folder is `task_dir/NAME` (or its `data/` child, as the archives unpack),
or `task_dir` itself when no task name is given. Subject names and categories come from the
folder's own `mapping.json` (LlamaFactory's format) when it has one, else from the built-in table
of the detected benchmark (categories.py). A bad file stops the run with one message naming the
file, the row and what was expected.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from ftlab.errors import UserError

from .categories import builtin_table

CHOICES = ("A", "B", "C", "D")
SPLITS = ("dev", "val", "test")
SPLIT_ALIASES = {"validation": "val", "valid": "val", "train": "dev"}
_HEADER = {"question", "a", "b", "c", "d", "answer"}


@dataclass(frozen=True)
class Question:
    question: str
    choices: tuple[str, str, str, str]
    answer: str | None  # A-D; None where the split has no public answers (C-Eval test)
    where: str  # "file row N", for messages


@dataclass
class Subject:
    name: str  # the file's subject id, e.g. college_physics
    title: str  # display name used in the prompt
    category: str
    dev: list[Question] = field(default_factory=list)
    items: list[Question] = field(default_factory=list)


@dataclass
class Task:
    name: str
    folder: Path
    split: str
    layout: str  # mmlu | ceval | cmmlu
    subjects: list[Subject]


def parse_task(task: str | None, split: str | None) -> tuple[str | None, str]:
    """`mmlu_test` → ("mmlu", "test"); an explicit `split` wins; the default split is test."""
    name = task
    if task:
        head, sep, tail = task.rpartition("_")
        if sep and (tail in SPLITS or tail in SPLIT_ALIASES):
            name, split = head, split or tail
    split = SPLIT_ALIASES.get(split or "test", split or "test")
    if split not in SPLITS:
        raise UserError(f"eval.split: {split!r} is not a split; expected one of {', '.join(SPLITS)} "
                        f"(or validation)")
    return name, split


def find_folder(task_dir: str, name: str | None) -> Path:
    base = Path(task_dir).expanduser()
    if not base.is_dir():
        raise UserError(f"eval.task_dir: {base} is not a folder")
    folder = base / name if name else base
    if not folder.is_dir():
        raise UserError(f"eval.task: no folder {folder} (expected {base}/{name}/ with dev/ and "
                        f"test/ CSV folders)")
    if not any((folder / s).is_dir() for s in SPLITS) and (folder / "data").is_dir():
        folder = folder / "data"
    if not any((folder / s).is_dir() for s in SPLITS):
        raise UserError(f"eval.task: {folder} has none of the split folders {', '.join(SPLITS)}/")
    return folder


def _subject_files(folder: Path, split: str) -> dict[str, Path]:
    """subject → CSV file of `split` (`{subject}_{split}.csv` or `{subject}.csv`)."""
    split_dir = folder / split
    if not split_dir.is_dir():
        have = ", ".join(s for s in SPLITS if (folder / s).is_dir())
        raise UserError(f"{folder}: no {split}/ folder for split {split!r} (this benchmark has: {have})")
    files = {}
    for path in sorted(split_dir.glob("*.csv")):
        stem = path.stem
        subject = stem[: -len(split) - 1] if stem.endswith(f"_{split}") else stem
        files[subject] = path
    if not files:
        raise UserError(f"{split_dir}: no .csv files")
    return files


def _layout(header: list[str]) -> str:
    names = [h.strip() for h in header]
    lowered = {n.lower() for n in names}
    if _HEADER <= lowered:
        return "cmmlu" if "Question" in names else "ceval"
    return "mmlu"


def read_questions(path: Path, expect_answers: bool = True) -> tuple[str, list[Question]]:
    """(layout, questions) of one CSV file; a malformed row is a UserError naming file and row."""
    try:
        handle = open(path, encoding="utf-8-sig", newline="")
    except OSError as err:
        raise UserError(f"{path}: cannot read: {err.strerror}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            rows = []
            start = 1
            for row in reader:
                rows.append((start, row))
                start = reader.line_num + 1
        except (csv.Error, UnicodeDecodeError) as err:
            raise UserError(f"{path} line {reader.line_num}: not a readable CSV file: {err}") from None
    if not rows:
        raise UserError(f"{path}: empty file (expected question,A,B,C,D,answer rows)")
    layout = _layout(rows[0][1])
    if layout == "mmlu":
        columns = {"question": 0, "A": 1, "B": 2, "C": 3, "D": 4, "answer": 5}
        width, body, first = 6, rows, 1
        expected = "6 fields: question,A,B,C,D,answer"
    else:
        header = [h.strip() for h in rows[0][1]]
        lower = [h.lower() for h in header]
        columns = {key: lower.index(key.lower()) for key in ("question", "A", "B", "C", "D", "answer")}
        width, body, first = len(header), rows[1:], 2
        expected = f"{width} fields like the header ({','.join(header)})"
    questions = []
    for number, (line, row) in enumerate(body, start=first):
        where = f"{path} row {number} (line {line})"
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # a blank line
        if len(row) != width:
            raise UserError(f"{where}: expected {expected}, got {len(row)} field{'s' * (len(row) != 1)}")
        question = row[columns["question"]].strip()
        if not question:
            raise UserError(f"{where}: empty question")
        answer = row[columns["answer"]].strip().upper() or None
        if answer is None and expect_answers:
            raise UserError(f"{where}: no answer (this split has no public answers, e.g. C-Eval's test "
                            f"split; evaluate split val instead)")
        if answer is not None and answer not in CHOICES:
            raise UserError(f"{where}: answer {row[columns['answer']]!r}: expected one of A, B, C, D")
        choices = tuple(row[columns[c]].strip() for c in CHOICES)
        questions.append(Question(question, choices, answer, where))  # type: ignore[arg-type]
    return layout, questions


def _mapping(folder: Path, layout: str, name: str | None) -> tuple[dict[str, tuple[str, str]], str]:
    """subject → (title, category), and where the table came from (for messages): the folder's
    mapping.json, else the built-in table of the benchmark the task is named after (mmlu, cmmlu,
    ceval), else that of the detected layout."""
    for candidate in (folder / "mapping.json", folder.parent / "mapping.json"):
        if candidate.is_file():
            try:
                data = json.loads(candidate.read_text(encoding="utf-8"))
                return {s: (str(v["name"]), str(v["category"])) for s, v in data.items()}, str(candidate)
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
                raise UserError(f"{candidate}: expected {{\"subject\": {{\"name\": ..., \"category\": ...}}}}: "
                                f"{type(err).__name__}: {err}") from None
    benchmark = name if name and builtin_table(name) else layout
    return builtin_table(benchmark) or {}, f"the built-in {benchmark} table"


def load_task(task_dir: str, task: str | None, split: str | None = None, subjects: list[str] | None = None,
              max_samples: int | None = None, n_shot: int = 5) -> Task:
    """Read the benchmark's questions (split) and shots (dev) for the chosen subjects."""
    name, split = parse_task(task, split)
    folder = find_folder(task_dir, name)
    files = _subject_files(folder, split)
    dev_files = _subject_files(folder, "dev") if n_shot > 0 else {}
    wanted = list(subjects or files)
    unknown = [s for s in wanted if s not in files]
    if unknown:
        raise UserError(f"eval.subjects: unknown subject{'s' * (len(unknown) > 1)} {', '.join(unknown)} in "
                        f"{folder / split} (available: {', '.join(files)})")
    table: dict[str, tuple[str, str]] | None = None
    source = ""
    layout = ""
    out = []
    for subject in wanted:
        file_layout, items = read_questions(files[subject])
        if not layout:
            layout = file_layout
            table, source = _mapping(folder, layout, name)
        if subject not in table:
            raise UserError(f"{files[subject]}: unknown subject {subject!r}: not in {source}; add a mapping.json "
                            f"to {folder} ({{\"{subject}\": {{\"name\": \"...\", \"category\": \"STEM\"}}}})")
        shots: list[Question] = []
        if n_shot > 0:
            if subject not in dev_files:
                raise UserError(f"{folder / 'dev'}: no dev file for subject {subject!r} "
                                f"(needed for {n_shot}-shot prompts; or set eval.n_shot: 0)")
            _, shots = read_questions(dev_files[subject])
        title, category = table[subject]
        out.append(Subject(subject, title, category, dev=shots[:n_shot],
                           items=items[:max_samples] if max_samples else items))
    return Task(name=name or folder.name, folder=folder, split=split, layout=layout, subjects=out)
