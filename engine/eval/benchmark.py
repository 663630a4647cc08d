"""The eval stage: a multiple-choice benchmark (MMLU / CMMLU / C-Eval) scored on the profile's model.

    ftctl run profiles/eval_demo.yaml

    task     ← tasks.load_task (bad folder, row or subject: one message, exit 2, before any loading)
    model    ← model.load_for_inference (base + adapter), tokenizer, chat template (data.template)
    prompts  ← prompts.PromptBuilder: n dev shots + the question, through the chat template
    score    ← scoring.score_batches: the letter with the highest next-token logit, batch by batch
    results  ← results.summarize: per subject / category / average → results.json + results.txt

Like `llamafactory-cli eval`, with the benchmark read from local folders (no dataset hub).
"""

from __future__ import annotations

import time
from pathlib import Path

from ftlab.engine.config import Profile

from .tasks import CHOICES


def run_eval(profile: Profile, run_dir: Path, display):
    from ftlab.engine.data.pipeline import make_renderer
    from ftlab.engine.train.callbacks import peak_memory_gib
    from ftlab.engine.train.runner import Cancelled, RunResult

    from .model import context_length, load_for_inference
    from .prompts import PromptBuilder
    from .results import report_text, summarize, write_results
    from .scoring import letter_ids, score_batches
    from .stage import BatchLog, StopFlag, prepare_run_dir
    from .tasks import load_task

    cfg = profile.eval
    started = time.perf_counter()
    task = load_task(cfg.task_dir, cfg.task, cfg.split, cfg.subjects, cfg.max_samples, cfg.n_shot)
    prepare_run_dir(profile, run_dir)
    questions = sum(len(s.items) for s in task.subjects)
    display.print(f"eval {task.name} ({task.layout} layout, split {task.split}): {len(task.subjects)} subjects, "
                  f"{questions} questions, {cfg.n_shot}-shot, lang {cfg.lang}")

    model, tokenizer = load_for_inference(profile, log=display.print)
    builder = PromptBuilder(make_renderer(profile.data, tokenizer), tokenizer, cfg.lang, context_length(model))
    letters = letter_ids(tokenizer)

    prompts, owners, fewer_shots = [], [], 0
    for s_index, subject in enumerate(task.subjects):
        for q_index, question in enumerate(subject.items):
            ids, shots = builder.build(question, subject)
            fewer_shots += shots < len(subject.dev)
            prompts.append(ids)
            owners.append((s_index, q_index))
    if fewer_shots:
        display.print(f"eval: {fewer_shots} prompts were longer than the model's context; they got fewer shots")

    batches = -(-len(prompts) // cfg.batch_size)
    log = BatchLog(run_dir, display, "eval", batches, "prompt tok")
    stop = StopFlag()
    picks: list[str | None] = [None] * len(prompts)
    try:
        for step, scored in score_batches(model, prompts, letters, cfg.batch_size, tokenizer.pad_token_id):
            for index, logits in scored:
                picks[index] = CHOICES[int(logits.argmax())]
            log.step(step, sum(len(prompts[i]) for i, _ in scored))
            if stop.requested and step < batches:
                log.end("cancelled", scored=sum(p is not None for p in picks))
                raise Cancelled(f"stopped after batch {step}/{batches}; no results written")
    finally:
        stop.restore()

    predictions = {s.name: [] for s in task.subjects}
    for (s_index, _), pick in zip(owners, picks):
        predictions[task.subjects[s_index].name].append(pick)
    report = summarize(task, predictions, {"n_shot": cfg.n_shot, "lang": cfg.lang,
                                           "model": profile.model.name_or_path, "adapter": profile.model.adapter})
    json_path, _ = write_results(run_dir, report)
    average = report["average"]["accuracy"]
    summary = {"accuracy": average, "questions": questions, "subjects": len(task.subjects),
               **{f"accuracy/{c}": v["accuracy"] for c, v in report["categories"].items()},
               "runtime_s": round(time.perf_counter() - started, 2), "peak_mem_gib": round(peak_memory_gib(), 3)}
    log.end("succeeded", **{k: v for k, v in summary.items() if k != "runtime_s"})
    display.print(report_text(report).rstrip("\n"))
    summary["done"] = (f"done: {questions} questions in {summary['runtime_s']:.1f}s, average accuracy "
                       f"{100 * (average or 0):.2f}%, peak memory {summary['peak_mem_gib']:.2f} GiB → {json_path}")
    return RunResult(run_dir, json_path, batches, None, summary["runtime_s"], summary)
