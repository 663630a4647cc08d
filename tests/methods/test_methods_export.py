"""Export round trips: each export is loaded by plain transformers/peft in a subprocess that never
imports ftlab, and its logits match the in-process trained model (relative error < 1e-3)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from ftlab.engine.config import Profile, dump_profile
from ftlab.engine.model.loader import load_model, load_tokenizer
from ftlab.engine.train.methods import apply_method

PLAIN_LOADER = textwrap.dedent("""
    import sys, json, torch
    from transformers import AutoModelForCausalLM
    job = json.loads(sys.stdin.read())
    ids = torch.tensor(job["ids"])
    for n, (kind, folder, base) in enumerate(job["exports"]):
        if kind == "adapter":
            from peft import PeftModel
            model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), folder)
        else:
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        with torch.no_grad():
            torch.save(model.eval()(ids).logits, f"logits-{n}.pt")
    assert not any(name.startswith("ftlab") for name in sys.modules), "the export needed ftlab"
""")

IDS = [[5, 17, 230, 41, 999, 7, 64, 12], [88, 3, 12, 600, 4, 4, 19, 250]]


def plain_logits(tmp_path, *exports):
    """Logits of each (kind, folder, base) export, loaded in one subprocess without ftlab."""
    job = {"ids": IDS, "exports": [[kind, str(folder), str(base)] for kind, folder, base in exports]}
    subprocess.run([sys.executable, "-c", PLAIN_LOADER], input=json.dumps(job), text=True, check=True,
                   timeout=300, cwd=tmp_path)
    return [torch.load(tmp_path / f"logits-{n}.pt") for n in range(len(exports))]


def rel_error(a, b) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def trained_run(tmp_path, folder, train_steps, **method):
    """Train a few steps in process and save it like the runner does (run dir with config.yaml, final/)."""
    profile = Profile(model={"name_or_path": str(folder)}, method=method)
    tokenizer = load_tokenizer(folder)
    model = apply_method(load_model(profile.model, folder, method=profile.method, tokenizer=tokenizer), profile.method)
    train_steps(model, profile)
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_profile(profile))
    model.save_pretrained(run_dir / "final")
    tokenizer.save_pretrained(run_dir / "final")
    # train mode (dropout 0: same function): in eval mode bnb's CPU backend repacks 4-bit weights
    # for a bf16 inference kernel that is itself ~3e-3 off the exact de-quantized product
    with torch.no_grad():
        return run_dir, model(torch.tensor(IDS)).logits


def test_lora_adapter_and_merged_round_trip(tiny_llama, tmp_path, train_steps):
    from ftlab.engine.model.export import export

    run_dir, expected = trained_run(tmp_path, tiny_llama, train_steps, type="lora", lora={"rank": 4})
    adapter = export(run_dir, tmp_path / "adapter")
    assert adapter["kind"] == "adapter"
    merged = export(run_dir, tmp_path / "merged", merge=True, dtype="fp32")
    got_adapter, got_merged = plain_logits(tmp_path, ("adapter", adapter["out"], tiny_llama),
                                           ("merged", merged["out"], ""))
    assert rel_error(got_adapter, expected) < 1e-3
    assert rel_error(got_merged, expected) < 1e-3
    from transformers import AutoModelForCausalLM

    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(tiny_llama)(torch.tensor(IDS)).logits
    assert rel_error(base, expected) > 1e-3  # the adapter did change the model
    half = export(run_dir, tmp_path / "merged-bf16", merge=True, dtype="bf16")
    cfg = json.loads((tmp_path / "merged-bf16" / "config.json").read_text())
    assert half["dtype"] == "bf16" and cfg.get("dtype", cfg.get("torch_dtype")) == "bfloat16"
    assert (tmp_path / "merged-bf16" / "tokenizer_config.json").is_file()


def test_qlora_merged_into_the_dequantized_base(tiny_llama, tmp_path, train_steps):
    pytest.importorskip("bitsandbytes")
    from ftlab.engine.model.export import export

    run_dir, expected = trained_run(tmp_path, tiny_llama, train_steps, type="lora", lora={"rank": 4},
                                    quantization={"bits": 4, "type": "nf4"})
    merged = export(run_dir, tmp_path / "merged", merge=True, dtype="fp32")
    assert merged["quantized_base"]
    config = json.loads((tmp_path / "merged" / "config.json").read_text())
    assert "quantization_config" not in config
    (got,) = plain_logits(tmp_path, ("merged", merged["out"], ""))
    assert rel_error(got, expected) < 1e-3


def test_export_refuses_a_non_empty_out_and_a_wrong_source(tiny_llama, tmp_path):
    from ftlab.engine.model.export import export

    from ftlab.errors import UserError

    with pytest.raises(UserError, match="neither a run dir"):
        export(tmp_path, tmp_path / "x")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "f").write_text("x")
    with pytest.raises(UserError, match="not empty"):
        export(tiny_llama, tmp_path / "busy")
