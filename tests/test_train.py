"""The first engine path end to end: `ftctl run` trains tiny random models (LoRA and full, SFT and
PT) for a few steps, and the embedded SmolLM2 with LoRA until its loss falls."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def ftctl_run(profile: Path | str, *sets: str, cwd=REPO, timeout=600) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "ftlab.cli", "run", str(profile), "--progress", "plain"]
    for item in sets:
        args += ["--set", item]
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=timeout)


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


TINY_SFT = """\
stage: {stage}
model: {{name_or_path: {model}}}
method: {{type: {method}, lora: {{rank: 4, alpha: 8}}}}
data: {{dataset: [{dataset}], dataset_dir: {data_dir}, cutoff_len: 64}}
train: {{batch_size: 2, max_steps: 3, learning_rate: 1.0e-2, lr_scheduler: constant, logging_steps: 1}}
output: {{dir: {out}}}
"""


def tiny_profile(tmp_path, model, stage="sft", method="lora", dataset="identity") -> tuple[Path, Path]:
    out = tmp_path / f"run-{stage}-{method}"
    path = tmp_path / f"{stage}-{method}.yaml"
    path.write_text(TINY_SFT.format(stage=stage, model=model, method=method, dataset=dataset,
                                    data_dir=REPO / "profiles/data", out=out))
    return path, out


def check_run_files(out: Path, steps: int) -> list[dict]:
    assert json.loads((out / "exit.json").read_text())["status"] == "succeeded"
    assert (out / "config.yaml").is_file() and (out / "log.txt").is_file()
    records = metrics(out)
    assert records[0]["event"] == "start" and records[-1]["event"] == "end"
    steps_logged = [r for r in records if "step" in r]
    assert [r["step"] for r in steps_logged] == list(range(1, steps + 1))
    for record in steps_logged:
        assert math.isfinite(record["loss"]) and record["tokens_per_s"] > 0 and record["peak_mem_gib"] > 0
        assert record["lr"] > 0 and record["grad_norm"] is not None
    assert not list(out.glob(".final.*")), "no half-written output left behind"
    return steps_logged


@pytest.mark.slow
def test_tiny_lora_sft_trains_only_the_adapter(tmp_path, tiny_llama):
    profile, out = tiny_profile(tmp_path, tiny_llama)
    result = ftctl_run(profile)
    assert result.returncode == 0, result.stderr[-3000:]
    check_run_files(out, 3)
    adapter = tensors(out / "final/adapter_model.safetensors")
    assert adapter and all("lora_" in key for key in adapter), "only adapter weights are trainable and saved"
    lora_b = [t for k, t in adapter.items() if "lora_B" in k]
    assert lora_b and all(t.abs().sum() > 0 for t in lora_b), "every LoRA B matrix moved away from its zero init"
    from peft import PeftConfig

    assert PeftConfig.from_pretrained(out / "final").r == 4
    assert (out / "final/tokenizer_config.json").is_file()


@pytest.mark.slow
def test_tiny_full_pt_changes_weights(tmp_path, tiny_llama):
    profile, out = tiny_profile(tmp_path, tiny_llama, stage="pt", method="full", dataset="pt_demo")
    result = ftctl_run(profile)
    assert result.returncode == 0, result.stderr[-3000:]
    check_run_files(out, 3)
    before = tensors(tiny_llama / "model.safetensors")
    after = tensors(out / "final/model.safetensors")
    assert before.keys() == after.keys()
    changed = [k for k in before if not (before[k] == after[k]).all()]
    assert "model.layers.0.self_attn.q_proj.weight" in changed and "model.norm.weight" in changed
    assert len(changed) >= len(before) - 1  # every trained tensor moved (tied head counts once)


def test_bad_inputs_exit_2_without_traceback(tmp_path, tiny_llama):
    profile, out = tiny_profile(tmp_path, tiny_llama, dataset="no_such_dataset")
    result = ftctl_run(profile)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "no_such_dataset" in result.stderr
    assert not (out / "final").exists()
    assert json.loads((out / "exit.json").read_text())["status"] == "failed"
    unknown = ftctl_run(profile, "model.name_or_path=no-such-model")
    assert unknown.returncode == 2 and "unknown model 'no-such-model'" in unknown.stderr


@pytest.mark.slow
def test_smollm2_lora_learns_its_new_name(tmp_path, smollm2_dir):
    """The demo's fine-tune, shortened: the loss falls, and the adapter answers a question it was
    not trained on with its new identity (the base model does not know the name)."""
    out = tmp_path / "smol"
    result = ftctl_run(REPO / "profiles/demo_lora_sft.yaml", f"output.dir={out}", "train.max_steps=12",
                       "data.dataset=[identity]", "train.lr_scheduler=constant")
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [r["loss"] for r in check_run_files(out, 12)]
    assert sum(losses[-3:]) / 3 < 0.5 * sum(losses[:3]) / 3, losses

    def ask(*adapter: str) -> str:
        chat = subprocess.run([sys.executable, "-m", "ftlab.cli", "chat", "smollm2-135m-instruct", *adapter,
                               "--message", "Tell me who you are, please.", "--max-tokens", "30"],
                              capture_output=True, text=True, timeout=300)
        assert chat.returncode == 0, chat.stderr[-2000:]
        return chat.stdout

    assert "ftlab assistant" in ask("--adapter", str(out / "final"))
    assert "ftlab" not in ask()


@pytest.mark.slow
def test_sigterm_is_a_warm_stop_and_the_run_resumes(tmp_path, tiny_llama):
    import signal
    import time

    profile, out = tiny_profile(tmp_path, tiny_llama)
    args = [sys.executable, "-m", "ftlab.cli", "run", str(profile), "--progress", "plain",
            "--set", "train.max_steps=400"]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if (out / "metrics.jsonl").exists() and '"step": 2' in (out / "metrics.jsonl").read_text():
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr[-2000:]
    record = json.loads((out / "exit.json").read_text())
    assert record["status"] == "cancelled"
    checkpoints = sorted(out.glob("checkpoint-*"))
    assert checkpoints, "a warm stop saves a checkpoint"
    stopped_at = int(checkpoints[-1].name.split("-")[1])
    assert not (out / "final").exists()

    resumed = ftctl_run(profile, "train.resume_from_checkpoint=last", f"train.max_steps={stopped_at + 2}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    steps = [r["step"] for r in metrics(out) if "step" in r]
    assert steps[-2:] == [stopped_at + 1, stopped_at + 2], steps
    assert json.loads((out / "exit.json").read_text())["status"] == "succeeded"
