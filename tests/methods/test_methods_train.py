"""Every method trains 3 steps on tiny random models: trainable counts match the formula and only
the intended parameters change."""

from __future__ import annotations

import pytest
import torch
from ftlab.engine.config import Profile
from ftlab.engine.model.loader import load_model, load_tokenizer
from ftlab.engine.train.methods import apply_method, trainable_summary


def snapshot(model) -> dict[str, torch.Tensor]:
    return {name: param.detach().clone() for name, param in model.named_parameters()}


def changed(before: dict, model) -> set[str]:
    return {name for name, param in model.named_parameters() if not torch.equal(before[name], param.detach())}


def linears(model) -> list[torch.nn.Linear]:
    head = model.get_output_embeddings()
    return [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m is not head]


def build(folder, **sections):
    profile = Profile(**sections)
    tokenizer = load_tokenizer(folder, new_special_tokens=profile.model.new_special_tokens)
    model = load_model(profile.model, folder, method=profile.method, max_length=profile.data.cutoff_len,
                       tokenizer=tokenizer)
    return profile, apply_method(model, profile.method)


@pytest.mark.parametrize("shape", ["tiny-llama", "tiny-qwen2", "tiny-mistral", "tiny-mixtral", "tiny-gemma"])
def test_lora_every_family(tiny_model_factory, train_steps, shape):
    folder = tiny_model_factory(shape)
    from transformers import AutoModelForCausalLM

    # MoE: "all" also adapts the fused 3D expert weights and the router (peft's ParamWrapper, its own
    # rank rule), so the formula is checked on the attention projections there.
    target = ["q_proj", "k_proj", "v_proj", "o_proj"] if shape == "tiny-mixtral" else "all"
    base = AutoModelForCausalLM.from_pretrained(folder)
    expected = sum(4 * (m.in_features + m.out_features) for name, m in base.named_modules()
                   if m in linears(base) and (target == "all" or name.split(".")[-1] in target))
    profile, model = build(folder, method={"type": "lora", "lora": {"rank": 4, "target": target}})
    assert trainable_summary(model)[0] == expected
    before = snapshot(model)
    trainer = train_steps(model, profile)
    assert trainer.state.global_step == 3
    moved = changed(before, model)
    assert moved and all("lora_" in name for name in moved)
    assert any("lora_B" in name for name in moved)


def test_lora_all_adapts_moe_experts(tiny_model_factory):
    _, model = build(tiny_model_factory("tiny-mixtral"), method={"type": "lora", "lora": {"rank": 4}})
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(".mlp.experts." in n for n in trainable) and any(".mlp.gate." in n for n in trainable)


def test_full_trains_everything(tiny_llama, train_steps):
    profile, model = build(tiny_llama, method={"type": "full"})
    trainable, total = trainable_summary(model)
    assert trainable == total
    before = snapshot(model)
    train_steps(model, profile)
    assert changed(before, model) == set(before)


@pytest.mark.parametrize("shape", ["tiny-llama", "tiny-mixtral"])
def test_freeze_last_layer_only(tiny_model_factory, train_steps, shape):
    folder = tiny_model_factory(shape)
    profile, model = build(folder, method={"type": "freeze", "freeze": {"trainable_layers": 1,
                                                                     "extra_modules": ["norm"]}})
    layer1 = [n for n, _ in model.named_parameters() if n.startswith("model.layers.1.")]
    expected = sum(p.numel() for n, p in model.named_parameters() if n.startswith("model.layers.1.")) \
        + model.model.norm.weight.numel()
    assert trainable_summary(model)[0] == expected
    before = snapshot(model)
    train_steps(model, profile)
    moved = changed(before, model)
    assert moved == set(layer1) | {"model.norm.weight"}
    for name in before:
        if name.startswith("model.layers.0.") or "embed" in name:
            assert torch.equal(before[name], dict(model.named_parameters())[name])  # bit-identical


def test_freeze_named_modules_first_layer(tiny_llama, train_steps):
    profile, model = build(tiny_llama, method={"type": "freeze", "freeze": {"trainable_layers": -1,
                                                                         "trainable_modules": ["mlp"]}})
    before = snapshot(model)
    train_steps(model, profile)
    moved = changed(before, model)
    assert moved and all(n.startswith("model.layers.0.mlp.") for n in moved)


def test_freeze_unknown_module_is_a_user_error(tiny_llama):
    from ftlab.errors import UserError

    with pytest.raises(UserError, match="trainable_modules: mpl not in a decoder layer"):
        build(tiny_llama, method={"type": "freeze", "freeze": {"trainable_modules": ["mpl"]}})


def test_dora_rslora_pissa_reach_peft(tiny_llama, train_steps):
    profile, model = build(tiny_llama, method={"type": "dora", "lora": {
        "rank": 4, "alpha": 16, "use_rslora": True, "pissa_init": True, "pissa_iter": 2,
        "target": ["q_proj", "v_proj"]}})
    config = model.peft_config["default"]
    assert config.use_dora and config.use_rslora and config.init_lora_weights == "pissa_niter_2"
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    assert layer.scaling["default"] == pytest.approx(16 / 4 ** 0.5)  # rsLoRA: alpha / sqrt(r)
    assert layer.lora_B["default"].weight.abs().sum() > 0  # PiSSA: B starts from singular vectors
    qv = [model.base_model.model.model.layers[i].self_attn.__getattr__(n) for i in range(2) for n in ("q_proj", "v_proj")]
    expected = sum(4 * (l.in_features + l.out_features) + l.out_features for l in qv)  # + DoRA magnitude
    assert trainable_summary(model)[0] == expected
    before = snapshot(model)
    train_steps(model, profile)
    assert any("lora_magnitude_vector" in n for n in changed(before, model))


def test_loraplus_groups(tiny_llama, train_steps):
    profile, model = build(tiny_llama, method={"type": "lora", "lora": {"rank": 4, "loraplus_lr_ratio": 16}})
    trainer = train_steps(model, profile, steps=1)
    lrs = {group["lr"] for group in trainer.optimizer.param_groups if group["params"]}
    assert lrs == {1e-2, 1e-2 * 16}
    b_group = next(g for g in trainer.optimizer.param_groups if g["lr"] == 1e-2 * 16)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all("lora_B" in names[id(p)] for p in b_group["params"])


def test_galore_steps(tiny_llama, train_steps):
    profile, model = build(tiny_llama, method={"type": "galore", "galore": {"rank": 4, "update_interval": 2}})
    before = snapshot(model)
    trainer = train_steps(model, profile)
    optimizer = getattr(trainer.optimizer, "optimizer", trainer.optimizer)
    assert type(optimizer).__module__.startswith("galore_torch")
    projected = [g for g in optimizer.param_groups if "rank" in g]
    assert projected and projected[0]["rank"] == 4 and projected[0]["update_proj_gap"] == 2
    assert len(projected[0]["params"]) == len(linears(model))
    assert changed(before, model) == set(before)


def test_qlora_4bit_on_cpu(tiny_llama, train_steps):
    pytest.importorskip("bitsandbytes")
    profile, model = build(tiny_llama, method={"type": "lora", "lora": {"rank": 4},
                                               "quantization": {"bits": 4, "type": "nf4", "double_quant": True}})
    import bitsandbytes as bnb

    quantized = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert quantized and quantized[0].weight.quant_type == "nf4"
    expected = sum(4 * (m.in_features + m.out_features) for m in quantized)
    trainable, _ = trainable_summary(model)
    assert trainable == expected
    before = snapshot(model)
    trainer = train_steps(model, profile)
    moved = changed(before, model)
    assert moved and all("lora_" in n for n in moved)
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in trainer.state.log_history if "loss" in r)


def test_qlora_8bit_on_cpu(tiny_llama, train_steps):
    pytest.importorskip("bitsandbytes")
    profile, model = build(tiny_llama, method={"type": "lora", "lora": {"rank": 4}, "quantization": {"bits": 8}})
    import bitsandbytes as bnb

    assert any(isinstance(m, bnb.nn.Linear8bitLt) for m in model.modules())
    before = snapshot(model)
    train_steps(model, profile, steps=2)
    moved = changed(before, model)
    assert moved and all("lora_" in n for n in moved)


def test_gptq_needs_a_gptq_checkpoint_and_its_package(tiny_llama, tmp_path):
    import importlib.util
    import json

    from ftlab.errors import UserError

    with pytest.raises(UserError, match="gptq needs a GPTQ-quantized checkpoint; .* is not quantized"):
        build(tiny_llama, method={"type": "lora", "quantization": {"method": "gptq"}})
    if importlib.util.find_spec("gptqmodel") is not None:
        return
    fake = tmp_path / "gptq"
    fake.mkdir()
    for item in tiny_llama.iterdir():
        (fake / item.name).symlink_to(item)
    config = json.loads((tiny_llama / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "gptq", "bits": 4}
    (fake / "config.json").unlink()
    (fake / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match=r"gptq needs the gptqmodel package \(pip install 'ftlab\[gptq\]'\)"):
        build(fake, method={"type": "lora", "quantization": {"method": "gptq"}})


def test_continue_from_an_existing_adapter(tiny_llama, tmp_path, train_steps):
    profile, model = build(tiny_llama, method={"type": "lora", "lora": {"rank": 4}})
    train_steps(model, profile, steps=1)
    model.save_pretrained(tmp_path / "adapter")
    saved = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n}
    profile = Profile(model={"adapter": str(tmp_path / "adapter")}, method={"type": "lora"})
    again = apply_method(load_model(profile.model, tiny_llama), profile.method, adapter=profile.model.adapter)
    current = dict(again.named_parameters())
    assert all(torch.equal(current[n], value) and current[n].requires_grad for n, value in saved.items())
    full = apply_method(load_model(profile.model, tiny_llama), Profile(method={"type": "full"}).method,
                        adapter=profile.model.adapter)
    assert not any("lora_" in n for n, _ in full.named_parameters())  # merged into the base
