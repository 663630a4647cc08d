"""The preference stages end to end: `ftctl run` trains rm, dpo, orpo, simpo and kto on a tiny
random Llama with LoRA over the shipped polite-vs-rude data, writes final/ and metrics.jsonl with
each stage's own numbers, and the loss falls on a repeated batch. DPO's first loss is log 2
(policy = reference: the adapter switched off with LoRA, a frozen copy with full fine-tuning),
and a reward model exports (`ftctl export`, LoRA merged or full) to a plain transformers sequence
classifier that ranks its pairs."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STEPS = 8

PROFILE = """\
stage: {stage}
model: {{name_or_path: {model}}}
method: {{type: {method}, lora: {{rank: 4, alpha: 8}}}}
data: {{dataset: [{dataset}], dataset_dir: {data_dir}, cutoff_len: 96, max_samples: 2}}
train: {{batch_size: 2, max_steps: {steps}, learning_rate: {lr}, lr_scheduler: constant, logging_steps: 1}}
output: {{dir: {out}}}
"""

# what each stage logs besides the loss (trl's names)
STAGE_KEYS = {
    "rm": ("accuracy", "margin", "mean_reward"),
    "dpo": ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins"),
    "orpo": ("rewards/accuracies", "rewards/margins", "nll_loss", "log_odds_ratio"),
    "simpo": ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins"),
    "kto": ("rewards/chosen", "kl"),
}


def write_profile(tmp_path, model, stage, method="lora", lr="1.0e-2", steps=STEPS) -> tuple[Path, Path]:
    out = tmp_path / f"run-{stage}-{method}"
    path = tmp_path / f"{stage}-{method}.yaml"
    dataset = "polite_kto" if stage == "kto" else "polite_pref"
    path.write_text(PROFILE.format(stage=stage, model=model, method=method, dataset=dataset, steps=steps, lr=lr,
                                   data_dir=REPO / "profiles/data", out=out))
    return path, out


# Tiny models run ~100x faster on one thread than on two contended ones (2 shared cores here).
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def ftctl_run(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ftlab.cli", "run", str(path), "--progress", "none"],
                          capture_output=True, text=True, cwd=REPO, timeout=300, env=ONE_THREAD, check=False)


def run_in_process(path: Path, out: Path):
    """The runner behind `ftctl run`, in this process (saves a torch/peft/trl import per run);
    the CLI path itself is covered by the dpo test."""
    import signal

    import torch
    from ftlab.engine.config import load_profile
    from ftlab.engine.train.progress import ProgressDisplay
    from ftlab.engine.train.runner import run_profile

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:  # the runner installs its warm-stop handlers; pytest keeps its own
        return run_profile(load_profile(path), out, ProgressDisplay("none"))
    finally:
        torch.set_num_threads(threads)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def step_records(out: Path) -> list[dict]:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["event"] == "start" and records[-1]["event"] == "end"
    return [r for r in records if "step" in r]


def check_stage_run(out: Path, stage: str) -> list[dict]:
    steps = step_records(out)
    assert [r["step"] for r in steps] == list(range(1, STEPS + 1))
    for record in steps:
        assert math.isfinite(record["loss"])
        for key in STAGE_KEYS[stage]:
            assert math.isfinite(record[key]), (key, record)
    # the same two rows every step: the objective improves
    assert steps[-1]["loss"] < steps[0]["loss"] - 1e-3, [r["loss"] for r in steps]
    final = out / "final"
    config = json.loads((final / "adapter_config.json").read_text())
    assert config["task_type"] == ("SEQ_CLS" if stage == "rm" else "CAUSAL_LM")
    assert not (final / "ref").exists(), "trl's frozen reference adapter is not exported"
    assert (final / "tokenizer_config.json").is_file()
    return steps


@pytest.mark.slow
def test_ftctl_run_dpo_lora_starts_at_log2_and_widens_the_margin(tmp_path, tiny_llama):
    path, out = write_profile(tmp_path, tiny_llama, "dpo")
    result = ftctl_run(path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((out / "exit.json").read_text())["status"] == "succeeded"
    assert (out / "config.yaml").is_file() and (out / "log.txt").is_file()
    steps = check_stage_run(out, "dpo")
    assert steps[0]["loss"] == pytest.approx(math.log(2), abs=1e-5), "step 0: the policy is its reference"
    assert steps[0]["rewards/margins"] == pytest.approx(0, abs=1e-6)
    assert steps[-1]["rewards/margins"] > 0 and steps[-1]["rewards/accuracies"] == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["rm", "orpo", "simpo", "kto"])
def test_stage_trains_lora_and_logs_its_metrics(tmp_path, tiny_llama, stage):
    path, out = write_profile(tmp_path, tiny_llama, stage)
    result = run_in_process(path, out)
    assert result.final_dir == out / "final" and result.steps == STEPS
    check_stage_run(out, stage)
    if stage == "rm":
        from safetensors.torch import load_file

        saved = load_file(out / "final/adapter_model.safetensors")
        assert any("score" in k for k in saved), "the new head is saved with the adapter"
        check_merged_reward_export(out, tmp_path / "rm-merged")


def check_merged_reward_export(out: Path, dest: Path) -> None:
    """`ftctl export --merge` of a reward adapter: a plain sequence classifier scoring like base + adapter."""
    import torch
    from ftlab.engine.model.export import export
    from peft import AutoPeftModelForSequenceClassification
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    assert export(out, dest, merge=True, dtype="fp32")["kind"] == "merged"
    merged = AutoModelForSequenceClassification.from_pretrained(dest)
    adapter = AutoPeftModelForSequenceClassification.from_pretrained(out / "final", num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(dest)
    adapter.config.pad_token_id = tokenizer.pad_token_id
    batch = tokenizer(["Thank you, happy to help!", "Go away."], return_tensors="pt", padding=True)
    with torch.no_grad():
        expected, got = adapter(**batch).logits, merged(**batch).logits
    assert got.shape == (2, 1) and torch.allclose(got, expected, atol=1e-5), (got, expected)


@pytest.mark.slow
def test_dpo_full_finetuning_starts_at_log2_against_a_frozen_copy(tmp_path, tiny_llama):
    path, out = write_profile(tmp_path, tiny_llama, "dpo", method="full", lr="1.0e-4", steps=2)
    run_in_process(path, out)
    steps = step_records(out)
    assert steps[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert steps[1]["rewards/margins"] != 0, "the policy moved away from its reference"
    assert (out / "final/model.safetensors").is_file()


@pytest.mark.slow
def test_reward_model_exports_to_plain_transformers_and_ranks_its_pairs(tmp_path, tiny_llama):
    path, out = write_profile(tmp_path, tiny_llama, "rm", method="full", lr="1.0e-3", steps=STEPS)
    run_in_process(path, out)
    import torch
    from ftlab.engine.model.export import export
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    export(out, tmp_path / "rm-export", dtype="fp32")  # a full reward model stays a sequence classifier
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "rm-export")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "rm-export")
    assert model.config.num_labels == 1 and model.config.pad_token_id == tokenizer.pad_token_id
    pairs = json.loads((REPO / "profiles/data/polite_pref.json").read_text())[:2]
    texts = []
    for pair in pairs:
        for answer in (pair["chosen"], pair["rejected"]):
            texts.append(tokenizer.apply_chat_template(
                [{"role": "user", "content": pair["instruction"]}, {"role": "assistant", "content": answer}],
                tokenize=False))
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        scores = model(**batch).logits.squeeze(-1)
    assert scores.shape == (4,) and torch.isfinite(scores).all()
    assert scores[0] > scores[1] and scores[2] > scores[3], f"trained pairs ranked: {scores.tolist()}"


@pytest.mark.slow
def test_reward_model_on_a_4bit_base_keeps_fp32_adapters_and_head(tmp_path, tiny_llama):
    # trl casts a quantized model's trainable parameters to bf16; ftlab keeps lora.upcast_adapters
    # (a bf16 score head on an fp32 forward failed here before)
    path, out = write_profile(tmp_path, tiny_llama, "rm", lr="1.0e-3", steps=2)
    path.write_text(path.read_text().replace("lora: {rank: 4, alpha: 8}}", "lora: {rank: 4, alpha: 8}, quantization: {bits: 4}}"))
    run_in_process(path, out)
    from safetensors.torch import load_file

    saved = load_file(out / "final/adapter_model.safetensors")
    assert any("score" in k for k in saved) and {str(t.dtype) for t in saved.values()} == {"torch.float32"}


@pytest.mark.slow
def test_demo_dpo_profile_on_the_embedded_model(tmp_path, smollm2_dir):
    out = tmp_path / "demo_dpo"
    result = subprocess.run(
        [sys.executable, "-m", "ftlab.cli", "run", "profiles/demo_dpo.yaml", "--progress", "none", "--output-dir",
         str(out), "--set", "train.max_steps=2", "--set", "train.batch_size=2", "--set", "data.max_samples=4",
         "--set", "train.warmup_ratio=0"],
        capture_output=True, text=True, cwd=REPO, timeout=300, env=ONE_THREAD, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    steps = step_records(out)
    assert steps[0]["loss"] == pytest.approx(math.log(2), abs=1e-4), "SmolLM2 with its adapter off is the reference"
    assert steps[1]["loss"] < steps[0]["loss"] and steps[1]["rewards/margins"] > 0


@pytest.mark.slow
def test_dpo_against_another_reference_model(tmp_path, tiny_llama, tiny_model_factory):
    # pref.ref_model: another random model (qwen2-shaped: a llama- or mistral-shaped one would get the
    # same weights from the same seed) is the reference, so the policy does not start at log 2
    path, out = write_profile(tmp_path, tiny_llama, "dpo", steps=1)
    path.write_text(path.read_text() + f"pref: {{ref_model: {tiny_model_factory('tiny-qwen2')}}}\n")
    run_in_process(path, out)
    first = step_records(out)[0]
    assert abs(first["loss"] - math.log(2)) > 1e-3 and first["rewards/chosen"] != 0
