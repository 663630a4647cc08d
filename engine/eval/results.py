"""Accuracy per subject, per category and overall; results.json and results.txt in the run dir.

    report = summarize(task, predictions, settings)   # predictions: subject → list of letters
    write_results(run_dir, report)                     # results.json + results.txt, each atomic
    print(report_text(report))

Category and average accuracies are over questions (micro averages), as LlamaFactory and the
MMLU paper report them: a subject with more questions weighs more. Accuracies are fractions in
results.json and percentages in results.txt.
"""

from __future__ import annotations

import json
from pathlib import Path

from .categories import CATEGORIES
from .tasks import Task


def _score(correct: int, total: int) -> dict:
    return {"accuracy": correct / total if total else None, "correct": correct, "total": total}


def summarize(task: Task, predictions: dict[str, list[str]], settings: dict | None = None) -> dict:
    """The report: settings, average, categories (in MMLU's order, those present), subjects."""
    subjects, per_category = {}, {}
    all_correct = all_total = 0
    for subject in task.subjects:
        letters = predictions[subject.name]
        correct = sum(p == q.answer for p, q in zip(letters, subject.items))
        total = len(subject.items)
        subjects[subject.name] = {"category": subject.category, **_score(correct, total)}
        c, t = per_category.get(subject.category, (0, 0))
        per_category[subject.category] = (c + correct, t + total)
        all_correct += correct
        all_total += total
    order = [c for c in CATEGORIES if c in per_category] + sorted(set(per_category) - set(CATEGORIES))
    return {
        "task": task.name, "folder": str(task.folder), "split": task.split, "layout": task.layout,
        **(settings or {}),
        "average": _score(all_correct, all_total),
        "categories": {c: _score(*per_category[c]) for c in order},
        "subjects": subjects,
        "predictions": predictions,
    }


def _pct(score: dict) -> str:
    acc = score["accuracy"]
    return f"{100 * acc:6.2f}  ({score['correct']}/{score['total']})" if acc is not None else "     -  (0/0)"


def report_text(report: dict) -> str:
    shots = report.get("n_shot")
    head = (f"{report['task']} ({report['split']}, {shots}-shot, {report.get('lang', 'en')}): "
            f"{len(report['subjects'])} subjects, {report['average']['total']} questions")
    width = max([len("Average")] + [len(c) for c in report["categories"]])
    lines = [head, f"{'Average':>{width}}: {_pct(report['average'])}"]
    lines += [f"{name:>{width}}: {_pct(score)}" for name, score in report["categories"].items()]
    lines.append("")
    lines.append("per subject:")
    sw = max(len(s) for s in report["subjects"]) if report["subjects"] else 0
    lines += [f"  {name:<{sw}}  {_pct(score)}  {score['category']}" for name, score in report["subjects"].items()]
    return "\n".join(lines) + "\n"


def write_results(run_dir: Path, report: dict) -> tuple[Path, Path]:
    from ftlab.engine.train.runner import write_atomic

    json_path, text_path = run_dir / "results.json", run_dir / "results.txt"
    write_atomic(json_path, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    write_atomic(text_path, report_text(report))
    return json_path, text_path
