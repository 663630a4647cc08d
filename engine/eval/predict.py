"""The predict stage: generate an answer for every prompt of a dataset and score it against the reference.

    ftctl run profiles/predict_demo.yaml

    data     ← engine.data.prepare_dataset(stage "predict"): prompt ids (chat template, generation
               prompt included, left-truncated to data.cutoff_len) and the reference answer's ids
    model    ← model.load_for_inference (base + adapter)
    generate ← Hugging Face generate, prompts of similar length batched together, left-padded;
               greedy unless generate.do_sample
    write    ← generated_predictions.jsonl: {"prompt", "predict", "label"} per row, in dataset order
               (LlamaFactory's file: prompt with special tokens, predict/label without)
    score    ← similarity: BLEU-4, ROUGE-1/2/L (mean over rows with a reference) → results.json/.txt

Like LlamaFactory's `do_predict` with `predict_with_generate`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ftlab.engine.config import Profile

IGNORE = -100


def stop_ids(model, tokenizer, renderer) -> list[int]:
    """Token ids that end an answer: the generation config's EOS ids, the tokenizer's EOS and the
    chat template's end-of-turn token (when it is one token)."""
    ids: list[int] = []
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids += configured if isinstance(configured, list) else [configured] if configured is not None else []
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    stop = getattr(renderer, "stop", None)
    if stop:
        encoded = tokenizer.encode(stop, add_special_tokens=False)
        if len(encoded) == 1:
            ids.append(encoded[0])
    return sorted(set(ids))


def generation_kwargs(cfg, pad_id: int, eos_ids: list[int]) -> dict:
    kwargs = {"max_new_tokens": cfg.max_new_tokens, "do_sample": cfg.do_sample, "num_beams": cfg.num_beams,
              "repetition_penalty": cfg.repetition_penalty, "pad_token_id": pad_id, "eos_token_id": eos_ids}
    if cfg.do_sample:
        kwargs.update(temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k)
    else:  # the model's generation_config may carry sampling defaults; greedy ignores them
        kwargs.update(temperature=None, top_p=None, top_k=None)
    if cfg.num_beams > 1:
        kwargs["length_penalty"] = cfg.length_penalty
    return kwargs


def _until_stop(ids: list[int], eos: set[int]) -> list[int]:
    for i, token in enumerate(ids):
        if token in eos:
            return ids[:i]
    return ids


@torch.inference_mode()
def generate_batch(model, prompts: list[list[int]], pad_id: int, kwargs: dict) -> list[list[int]]:
    """New token ids for each prompt (left-padded batch), up to and without the first stop id."""
    from .scoring import left_pad

    device = next(model.parameters()).device
    batch = left_pad(prompts, pad_id, device)
    out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **kwargs)
    new = out[:, batch["input_ids"].shape[1]:].tolist()
    eos = set(kwargs["eos_token_id"])
    return [_until_stop(ids, eos) for ids in new]


def run_predict(profile: Profile, run_dir: Path, display):
    from transformers import set_seed

    from ftlab.engine.data import prepare_dataset
    from ftlab.engine.data.pipeline import make_renderer
    from ftlab.engine.train.callbacks import peak_memory_gib
    from ftlab.engine.train.runner import Cancelled, RunResult, write_atomic
    from ftlab.errors import UserError

    from .model import load_for_inference
    from .similarity import similarity
    from .stage import BatchLog, StopFlag, prepare_run_dir

    cfg = profile.generate
    started = time.perf_counter()
    if not profile.data.dataset:
        raise UserError("data.dataset: the predict stage needs a dataset to generate answers for")
    prepare_run_dir(profile, run_dir)
    set_seed(profile.train.seed)
    model, tokenizer = load_for_inference(profile, log=display.print)
    data = prepare_dataset(profile.data, "predict", tokenizer, seed=profile.train.seed, log=display.print)
    rows = data.train
    if data.eval is not None:
        display.print("predict: data.val_size is ignored (every row is predicted)")
    prompts = [list(map(int, ids)) for ids in rows["input_ids"]]
    labels = [[int(t) for t in ids if t != IGNORE] for ids in rows["labels"]]
    if not prompts:
        raise UserError(f"data.dataset {', '.join(profile.data.dataset)}: no usable rows to predict")

    renderer = make_renderer(profile.data, tokenizer)
    pad_id = tokenizer.pad_token_id
    eos = stop_ids(model, tokenizer, renderer)
    kwargs = generation_kwargs(cfg, pad_id, eos)
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    batches = -(-len(order) // cfg.batch_size)
    display.print(f"predict: {len(prompts)} prompts, {batches} batch{'es' * (batches != 1)} of up to {cfg.batch_size}, "
                  f"{'sampling' if cfg.do_sample else 'greedy'}, at most {cfg.max_new_tokens} new tokens")
    log = BatchLog(run_dir, display, "predict", batches, "new tok")
    stop = StopFlag()
    outputs: list[list[int] | None] = [None] * len(prompts)
    try:
        for step, start in enumerate(range(0, len(order), cfg.batch_size), start=1):
            chunk = order[start:start + cfg.batch_size]
            for index, ids in zip(chunk, generate_batch(model, [prompts[i] for i in chunk], pad_id, kwargs)):
                outputs[index] = ids
            log.step(step, sum(len(outputs[i]) for i in chunk))
            if stop.requested and step < batches:
                log.end("cancelled", generated=sum(o is not None for o in outputs))
                raise Cancelled(f"stopped after batch {step}/{batches}; no predictions written")
    finally:
        stop.restore()

    eos_set = set(eos)
    skip = cfg.skip_special_tokens
    records = []
    for prompt, label, output in zip(prompts, labels, outputs):
        label = _until_stop(label, eos_set)
        records.append({"prompt": tokenizer.decode(prompt, skip_special_tokens=False),
                        "predict": tokenizer.decode(output, skip_special_tokens=skip),
                        "label": tokenizer.decode(label, skip_special_tokens=skip)})
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    write_atomic(run_dir / "generated_predictions.jsonl", lines)

    scored = [r for r, label in zip(records, labels) if label]
    runtime = time.perf_counter() - started
    results = {"predict_samples": len(records), "predict_with_reference": len(scored)}
    if scored:
        scores = similarity([r["predict"] for r in scored], [r["label"] for r in scored])
        results.update({f"predict_{k}": v for k, v in scores.items()})
    results.update({"predict_runtime": round(runtime, 2),
                    "predict_samples_per_second": round(len(records) / max(runtime, 1e-9), 3),
                    "generated_tokens": sum(len(o) for o in outputs)})
    write_atomic(run_dir / "results.json", json.dumps(results, indent=2) + "\n")
    text = _results_text(results, run_dir)
    write_atomic(run_dir / "results.txt", text)
    summary = {**results, "runtime_s": round(runtime, 2), "peak_mem_gib": round(peak_memory_gib(), 3)}
    log.end("succeeded", **{k: v for k, v in summary.items() if k != "runtime_s"})
    display.print(text.rstrip("\n"))
    summary["done"] = (f"done: {len(records)} predictions in {runtime:.1f}s, peak memory "
                       f"{summary['peak_mem_gib']:.2f} GiB → {run_dir / 'generated_predictions.jsonl'}")
    return RunResult(run_dir, run_dir / "generated_predictions.jsonl", batches, None, summary["runtime_s"], summary)


def _results_text(results: dict, run_dir: Path) -> str:
    lines = [f"predict: {results['predict_samples']} rows ({results['predict_with_reference']} with a reference) "
             f"→ {run_dir / 'generated_predictions.jsonl'}"]
    for key in ("bleu-4", "rouge-1", "rouge-2", "rouge-l"):
        if f"predict_{key}" in results:
            lines.append(f"{key:>8}: {results[f'predict_{key}']:.2f}")
    if not results["predict_with_reference"]:
        lines.append("no reference answers in the data: BLEU/ROUGE not computed")
    return "\n".join(lines) + "\n"
