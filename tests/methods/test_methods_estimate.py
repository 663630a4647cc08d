"""The memory estimate: parameter and trainable counts agree with real (tiny) models, the parts
behave as the methods say, and `ftctl estimate` runs without torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from ftlab.engine.config import Profile
from ftlab.engine.model.estimate import estimate, read_shape, synthetic_shape


@pytest.mark.parametrize("shape", ["tiny-llama", "tiny-qwen2", "tiny-mistral", "tiny-gemma"])
def test_counts_match_real_models(tiny_model_factory, shape):
    from ftlab.engine.model.loader import load_model
    from ftlab.engine.train.methods import apply_method, trainable_summary
    from transformers import AutoModelForCausalLM

    folder = tiny_model_factory(shape)
    real = AutoModelForCausalLM.from_pretrained(folder)
    model_shape = read_shape(folder)
    assert model_shape.total_params() == real.num_parameters()
    for method in ({"type": "lora", "lora": {"rank": 4}}, {"type": "dora", "lora": {"rank": 4, "target": ["q_proj"]}},
                   {"type": "freeze", "freeze": {"trainable_layers": 1}}):
        profile = Profile(method=method)
        est = estimate(profile, model_shape)
        model = apply_method(load_model(profile.model, folder, method=profile.method), profile.method)
        assert est.trainable == trainable_summary(model)[0], method


def test_method_ordering_and_checkpointing():
    shape = synthetic_shape("llama2-7b")
    profile = Profile(model={"gradient_checkpointing": True}, method={"type": "lora", "lora": {"rank": 16}},
                      data={"cutoff_len": 2048}, train={"batch_size": 4})
    lora = estimate(profile, shape)
    full = estimate(profile, shape, method="full")
    qlora = estimate(profile, shape, quant_bits=4)
    assert 6.5e9 < lora.params < 7.0e9
    assert qlora.parts["weights"] < 0.35 * lora.parts["weights"]
    assert full.parts["optimizer"] == pytest.approx(2 * full.parts["weights"])
    assert qlora.total_gib < lora.total_gib < full.total_gib
    acts = lora.activations_gib
    assert acts["with_checkpointing"] < 0.1 * acts["without_checkpointing"]
    no_liger = estimate(profile.model_copy(update={"model": profile.model.model_copy(
        update={"tricks": profile.model.tricks.model_copy(update={"liger_kernel": "off"})})}), shape)
    assert no_liger.parts["logits"] > 3 and lora.parts["logits"] == 0


def test_ftctl_estimate_json_without_torch(tmp_path, smollm2_dir):
    path = tmp_path / "p.yaml"
    path.write_text("stage: sft\nmethod: {type: lora}\ntrain: {batch_size: 2}\n")
    code = (f"import sys; sys.argv = ['ftctl', 'estimate', {str(path)!r}, '--json'];"
            "from ftlab.cli.main import main; rc = main();"
            "assert 'torch' not in sys.modules, 'estimate imported torch'; sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["profile"]["method"] == "lora" and 1.3e8 < data["profile"]["params"] < 1.4e8
    assert [m["method"] for m in data["methods"]][:3] == ["full", "freeze", "lora"]
