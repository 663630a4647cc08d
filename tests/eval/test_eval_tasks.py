"""The benchmark reader on tiny folders in MMLU's, CMMLU's and C-Eval's own layouts, its messages for
bad input, and accuracy per subject / category / average on a known case."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from ftlab.engine.eval.results import report_text, summarize, write_results
from ftlab.engine.eval.tasks import Question, Subject, Task, load_task, parse_task
from ftlab.errors import UserError


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def q(n: int, answer: str = "A") -> list[str]:
    return [f"Question {n}, with a comma?", f"a{n}", f"b{n}", f"c{n}", f"d{n}", answer]


def mmlu(root: Path, subjects=("college_physics", "philosophy"), splits=("dev", "test")) -> Path:
    for subject in subjects:
        for split in splits:
            write_csv(root / "mmlu" / split / f"{subject}_{split}.csv", [q(i, "ABCD"[i % 4]) for i in range(5)])
    return root / "mmlu"


def test_mmlu_layout(tmp_path):
    mmlu(tmp_path)
    task = load_task(str(tmp_path), "mmlu_test", n_shot=2, max_samples=3)
    assert (task.name, task.split, task.layout) == ("mmlu", "test", "mmlu")
    physics, philosophy = task.subjects
    assert (physics.name, physics.title, physics.category) == ("college_physics", "college physics", "STEM")
    assert philosophy.category == "Humanities"
    assert len(physics.dev) == 2 and len(physics.items) == 3
    assert physics.items[1] == Question("Question 1, with a comma?", ("a1", "b1", "c1", "d1"), "B",
                                        physics.items[1].where)


def test_cmmlu_layout(tmp_path):
    header = ["", "Question", "A", "B", "C", "D", "Answer"]
    for split in ("dev", "test"):
        write_csv(tmp_path / "cmmlu" / split / "agronomy.csv",
                  [header] + [[str(i), f"问题{i}", "甲", "乙", "丙", "丁", "C"] for i in range(3)])
    task = load_task(str(tmp_path), "cmmlu_test", n_shot=1)
    (subject,) = task.subjects
    assert task.layout == "cmmlu" and (subject.title, subject.category) == ("农学", "Other")
    assert subject.items[2].question == "问题2" and subject.items[2].choices == ("甲", "乙", "丙", "丁")
    assert [x.answer for x in subject.items] == ["C"] * 3 and len(subject.dev) == 1


def test_ceval_layout_and_hidden_test_answers(tmp_path):
    header = ["id", "question", "A", "B", "C", "D", "answer", "explanation"]
    folder = tmp_path / "ceval"
    for split in ("dev", "val"):
        write_csv(folder / split / f"logic_{split}.csv",
                  [header] + [[str(i), f"题{i}", "1", "2", "3", "4", "D", "因为"] for i in range(2)])
    write_csv(folder / "test" / "logic_test.csv", [header, ["0", "题", "1", "2", "3", "4", "", ""]])
    task = load_task(str(tmp_path), "ceval_validation")
    assert task.split == "val" and task.layout == "ceval"
    assert (task.subjects[0].title, task.subjects[0].category) == ("逻辑学", "Humanities")
    with pytest.raises(UserError, match=r"logic_test.csv row 2 \(line 2\): no answer .* evaluate split val"):
        load_task(str(tmp_path), "ceval_test")


def test_bad_row_names_file_and_row(tmp_path):
    folder = mmlu(tmp_path)
    bad = folder / "test" / "philosophy_test.csv"
    rows = [q(0), q(1), q(2)[:5]]
    write_csv(bad, rows)
    with pytest.raises(UserError) as info:
        load_task(str(tmp_path), "mmlu_test")
    assert str(info.value) == f"{bad} row 3 (line 3): expected 6 fields: question,A,B,C,D,answer, got 5 fields"
    write_csv(bad, [q(0), q(1, answer="E")])
    with pytest.raises(UserError, match=r"philosophy_test.csv row 2 \(line 2\): answer 'E': expected one of A"):
        load_task(str(tmp_path), "mmlu_test")


def test_unknown_subject_and_missing_folder(tmp_path):
    folder = mmlu(tmp_path)
    with pytest.raises(UserError, match="eval.subjects: unknown subject astrology in .*available: college_physics, "
                                        "philosophy"):
        load_task(str(tmp_path), "mmlu_test", subjects=["astrology"])
    with pytest.raises(UserError, match=r"eval.task: no folder .*/cmmlu \(expected"):
        load_task(str(tmp_path), "cmmlu_test")
    write_csv(folder / "test" / "cooking_test.csv", [q(0)])
    write_csv(folder / "dev" / "cooking_dev.csv", [q(0)])
    with pytest.raises(UserError, match="unknown subject 'cooking': not in the built-in mmlu table; add a mapping.json"):
        load_task(str(tmp_path), "mmlu_test")
    (folder / "mapping.json").write_text(json.dumps({s: {"name": s, "category": c} for s, c in [
        ("cooking", "Other"), ("college_physics", "STEM"), ("philosophy", "Humanities")]}))
    assert [s.category for s in load_task(str(tmp_path), "mmlu_test").subjects] == ["STEM", "Other", "Humanities"]


def test_task_names_and_splits():
    assert parse_task("mmlu_test", None) == ("mmlu", "test")
    assert parse_task("ceval_validation", None) == ("ceval", "val")
    assert parse_task("my_bench", "dev") == ("my_bench", "dev")
    assert parse_task(None, None) == (None, "test")


def test_accuracy_per_subject_category_and_average(tmp_path):
    def items(answers):
        return [Question(f"q{i}", ("a", "b", "c", "d"), a, "x") for i, a in enumerate(answers)]

    task = Task("toy", tmp_path, "test", "mmlu", [
        Subject("algebra", "algebra", "STEM", items=items("ABCD")),
        Subject("physics", "physics", "STEM", items=items("AA")),
        Subject("ethics", "ethics", "Humanities", items=items("C")),
    ])
    predictions = {"algebra": list("ABCA"), "physics": list("BB"), "ethics": ["C"]}
    report = summarize(task, predictions, {"n_shot": 0, "lang": "en"})
    assert report["subjects"]["algebra"] == {"category": "STEM", "accuracy": 0.75, "correct": 3, "total": 4}
    assert report["subjects"]["physics"]["accuracy"] == 0.0
    assert report["categories"] == {"STEM": {"accuracy": 0.5, "correct": 3, "total": 6},
                                    "Humanities": {"accuracy": 1.0, "correct": 1, "total": 1}}
    assert report["average"] == {"accuracy": 4 / 7, "correct": 4, "total": 7}  # over questions, not subjects
    write_results(tmp_path, report)
    assert json.loads((tmp_path / "results.json").read_text())["average"]["correct"] == 4
    text = (tmp_path / "results.txt").read_text()
    assert text == report_text(report) and "Average:  57.14  (4/7)" in text and "STEM:  50.00  (3/6)" in text
    assert not list(tmp_path.glob(".results*")), "no temp files left"


def test_mmlu_with_a_header_row_still_uses_mmlus_table(tmp_path):
    rows = [["question", "A", "B", "C", "D", "answer"], q(0, "D")]
    for split in ("dev", "test"):
        write_csv(tmp_path / "mmlu" / split / f"virology_{split}.csv", rows)
    (subject,) = load_task(str(tmp_path), "mmlu_test", n_shot=1).subjects
    assert (subject.title, subject.category, subject.items[0].answer) == ("virology", "Other", "D")
