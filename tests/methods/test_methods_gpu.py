"""GPU checks (`pytest -m gpu` on the H200 box): the liger fast path is really on, every method
steps on the device, S² matches SDPA with one group, and on a Llama-2-7B shape LoRA and QLoRA
stay within their memory budgets (the estimate within 35%; QLoRA far from the 73 GiB of a naive
path). Models are random weights built on the device: nothing is downloaded."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture(scope="module")
def bench_root(tmp_path_factory):
    import os

    return os.environ.get("FTLAB_BENCH_MODELS") or str(tmp_path_factory.mktemp("bench-models"))


@pytest.fixture(scope="module")
def small_folder(bench_root):
    from pathlib import Path

    from ftlab.engine.bench.methods import build_folder

    return build_folder("tiny-llama", Path(bench_root))


def _load(folder, **sections):
    from ftlab.engine.config import Profile
    from ftlab.engine.model.loader import load_model
    from ftlab.engine.train.methods import apply_method

    profile = Profile(**sections)
    model = load_model(profile.model, folder, method=profile.method)
    return profile, apply_method(model, profile.method, autocast=True)


def test_liger_is_applied_and_matches_the_plain_loss(small_folder):
    pytest.importorskip("liger_kernel")
    ids = torch.randint(3, 49152, (2, 128), device="cuda")
    losses = {}
    for setting in ("auto", "off"):
        _, model = _load(small_folder, model={"tricks": {"liger_kernel": setting}}, method={"type": "full"})
        model.cuda()
        if setting == "auto":
            assert model.model.norm._get_name().startswith("Liger")  # liger renames patched instances
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(ids, labels=ids)
        out.loss.backward()
        losses[setting] = out.loss.item()
    assert losses["auto"] == pytest.approx(losses["off"], rel=2e-2)


@pytest.mark.parametrize("method", ["full", "freeze", "lora", "dora", "qlora", "qlora8", "galore"])
def test_every_method_steps_on_the_gpu(small_folder, bench_root, method, tmp_path):
    out = subprocess.run([sys.executable, "-m", "ftlab.engine.bench.methods", "--child", method,
                          "--shape", "tiny-llama", "--steps", "3", "--batch", "2", "--seq", "128",
                          "--models-dir", bench_root], capture_output=True, text=True, timeout=600, check=False)
    if method == "freeze":  # the tiny model has 2 layers; the benchmark trains the last 3
        assert out.returncode != 0 and "trainable_layers: 3 is outside" in out.stderr
        return
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads([l for l in out.stdout.splitlines() if l.startswith("RESULT ")][-1][7:])
    assert result["steps"] == 3 and result["tokens_per_s"] > 0
    assert result["final_loss"] == result["final_loss"]  # not NaN


def test_shift_attention_one_group_equals_sdpa_on_gpu(small_folder):
    ids = torch.randint(3, 49152, (2, 256), device="cuda")
    _, plain = _load(small_folder, model={"tricks": {"liger_kernel": "off"}}, method={"type": "full"})
    _, s2 = _load(small_folder, model={"tricks": {"liger_kernel": "off", "shift_attn": True,
                                                  "shift_attn_group_ratio": 1.0}}, method={"type": "full"})
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        a, b = plain.cuda()(ids).logits, s2.cuda()(ids).logits
    assert torch.allclose(a.float(), b.float(), atol=2e-2)


def test_llama2_7b_lora_and_qlora_memory(bench_root, tmp_path):
    """The issue's warning: a naive QLoRA path peaked at 73 GiB on a 7B model."""
    out_file = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "ftlab.engine.bench.methods", "--shape", "llama2-7b",
                           "--methods", "lora,qlora", "--steps", "4", "--models-dir", bench_root,
                           "--out", str(out_file)], capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = {r["method"]: r for r in json.loads(out_file.read_text())["results"]}
    lora, qlora = results["lora"], results["qlora"]
    assert qlora["peak_gib_nvml"] < 14 and lora["peak_gib_nvml"] < 26
    for r in (lora, qlora):
        assert 0.65 < r["estimate_gib"] / r["peak_gib_nvml"] < 1.35, r
        assert r["norm_class"].startswith("Liger")
