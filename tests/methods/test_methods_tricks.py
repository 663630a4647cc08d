"""Loader tricks on tiny models: embedding resize, MoE auxiliary loss, S² attention, RoPE scaling,
NEFTune, gradient checkpointing, and the version gate of the one patches module."""

from __future__ import annotations

import pytest
import torch
from ftlab.engine.config import Profile
from ftlab.engine.model.loader import RESIZED_ATTR, load_model, load_tokenizer
from ftlab.engine.train.methods import apply_method


def load(folder, training=True, **sections):
    profile = Profile(**sections)
    tokenizer = load_tokenizer(folder, new_special_tokens=profile.model.new_special_tokens)
    model = load_model(profile.model, folder, method=profile.method, max_length=profile.data.cutoff_len,
                       tokenizer=tokenizer, training=training)
    return profile, tokenizer, model


def test_new_special_tokens_resize_mean_and_train(tiny_llama, train_steps):
    from transformers import AutoModelForCausalLM

    old = AutoModelForCausalLM.from_pretrained(tiny_llama).get_input_embeddings().weight.detach()
    profile, tokenizer, model = load(tiny_llama, model={"new_special_tokens": ["<tool>", "<obs>"]},
                                     method={"type": "lora", "lora": {"rank": 4}})
    assert len(tokenizer) == old.shape[0] + 2 and tokenizer.convert_tokens_to_ids("<tool>") == old.shape[0]
    emb = model.get_input_embeddings().weight.detach()
    assert emb.shape[0] == len(tokenizer) and getattr(model, RESIZED_ATTR)
    assert torch.allclose(emb[-2:], old.mean(0, keepdim=True).expand(2, -1), atol=1e-6)
    model = apply_method(model, profile.method)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("embed_tokens.modules_to_save" in n for n in trainable)
    assert any("lm_head.modules_to_save" in n for n in trainable)
    train_steps(model, profile, steps=1)


def test_moe_aux_loss_in_the_loss(tiny_model_factory):
    folder = tiny_model_factory("tiny-mixtral")
    x = torch.randint(3, 1000, (2, 16), generator=torch.Generator().manual_seed(0))
    losses = {}
    for coef in (0.0, 0.5):
        _, _, model = load(folder, model={"moe_aux_loss_coef": coef}, method={"type": "full"})
        assert model.config.output_router_logits is (coef > 0)
        out = model(x, labels=x)
        losses[coef] = out.loss
        if coef:
            aux = out.aux_loss
    assert torch.allclose(losses[0.5], losses[0.0] + 0.5 * aux, atol=1e-5)
    _, _, model = load(folder, method={"type": "full"})  # default: on, with the model's coefficient
    assert model.config.output_router_logits


def test_moe_coef_on_dense_model_is_a_user_error(tiny_llama):
    from ftlab.errors import UserError

    with pytest.raises(UserError, match="moe_aux_loss_coef: llama is not a mixture-of-experts"):
        load(tiny_llama, model={"moe_aux_loss_coef": 0.01})


@pytest.mark.parametrize("ratio,same", [(1.0, True), (0.25, False)])
def test_shift_attention(tiny_llama, ratio, same):
    x = torch.randint(3, 1000, (2, 64), generator=torch.Generator().manual_seed(1))
    _, _, plain = load(tiny_llama)
    _, _, s2 = load(tiny_llama, model={"tricks": {"shift_attn": True, "shift_attn_group_ratio": ratio}})
    assert s2.config._attn_implementation == "ftlab_s2"
    with torch.no_grad():
        ref, out = plain(x).logits, s2(x).logits
        assert torch.allclose(ref, out, atol=1e-5) is same
        s2.eval()
        assert torch.allclose(ref, s2(x).logits, atol=1e-5)  # evaluation uses full attention


def test_shift_attention_llama_only(tiny_model_factory):
    from ftlab.errors import UserError

    with pytest.raises(UserError, match="Llama family"):
        load(tiny_model_factory("tiny-qwen2"), model={"tricks": {"shift_attn": True}})


@pytest.mark.parametrize("kind", ["linear", "dynamic", "yarn"])
def test_rope_scaling_beyond_context(tiny_llama, kind):
    _, _, model = load(tiny_llama, model={"rope_scaling": kind}, data={"cutoff_len": 5000})
    params = model.config.rope_parameters
    assert params["rope_type"] == kind and params["factor"] == 3.0  # ceil(5000 / 2048)
    assert model.config.max_position_embeddings == 6144
    x = torch.randint(3, 1000, (1, 8))
    assert torch.isfinite(model(x).logits).all()
    _, _, short = load(tiny_llama, model={"rope_scaling": kind}, data={"cutoff_len": 1024})
    assert short.config.rope_parameters.get("rope_type", "default") == "default"


def test_neftune_and_checkpointing_reach_the_trainer(tiny_llama, train_steps):
    profile, _, model = load(tiny_llama, model={"gradient_checkpointing": True,
                                                "tricks": {"neftune_noise_alpha": 5.0}}, method={"type": "lora"})
    assert model.is_gradient_checkpointing and model.training
    model = apply_method(model, profile.method)
    trainer = train_steps(model, profile, steps=1)
    assert trainer.args.neftune_noise_alpha == 5.0


def test_attention_choice(tiny_llama, monkeypatch):
    import importlib.util

    from ftlab.engine.model.loader import pick_attention

    from ftlab.errors import UserError

    assert pick_attention("auto") == "sdpa"
    if importlib.util.find_spec("flash_attn") is None:
        with pytest.raises(UserError, match="flash_attention_2 needs the flash-attn package"):
            pick_attention("flash_attention_2")


def test_liger_auto_is_off_without_gpu_and_on_is_an_error():
    from ftlab.engine.model.loader import want_liger

    from ftlab.errors import UserError

    if torch.cuda.is_available():
        pytest.skip("CPU behaviour")
    assert want_liger("auto", "llama") is False
    with pytest.raises(UserError, match="liger_kernel"):
        want_liger("on", "llama")


def test_patches_gate_pins_the_transformers_contract():
    """Fails when transformers changes what S² relies on: its version, the attention-function
    signature and the registries."""
    import inspect

    import transformers
    from ftlab.engine.model import patches
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    patches.check_transformers()
    assert transformers.__version__.startswith("5.")
    params = list(inspect.signature(sdpa_attention_forward).parameters)
    assert params[:5] == ["module", "query", "key", "value", "attention_mask"]
    assert {"dropout", "scaling", "is_causal"} <= set(params)
    name = patches.register_s2()
    assert AttentionInterface()[name] is patches.s2_attention and name in ALL_MASK_ATTENTION_FUNCTIONS
    source = inspect.getsource(transformers.models.llama.modeling_llama.LlamaAttention.forward)
    assert "ALL_ATTENTION_FUNCTIONS" in source and "self.config._attn_implementation" in source


def test_lora_under_autocast_keeps_inputs_in_compute_dtype(tiny_llama):
    """fp32 adapters on a bf16 base under autocast: no per-module fp32 copy of the input, and the
    step still trains the fp32 adapter weights."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    profile, _, model = load(tiny_llama, model={"dtype": "bf16"}, method={"type": "lora", "lora": {"rank": 4}})
    model = apply_method(model, profile.method, autocast=True)
    layers = [m for m in model.modules() if isinstance(m, BaseTunerLayer)]
    assert layers and not any(m.cast_input_dtype_enabled for m in layers)
    lora_b = model.base_model.model.model.layers[0].self_attn.q_proj.lora_B["default"].weight
    assert lora_b.dtype == torch.float32
    x = torch.randint(3, 1000, (2, 16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(x, labels=x).loss
    loss.backward()
    assert lora_b.grad is not None and lora_b.grad.dtype == torch.float32


def test_liger_patches_the_instance(tiny_llama):
    """The liger call matches the installed liger-kernel and transformers (run in a subprocess:
    liger also swaps module-level functions such as Llama's RoPE for Triton kernels)."""
    pytest.importorskip("liger_kernel")
    import subprocess
    import sys

    code = ("import sys; from transformers import AutoModelForCausalLM;"
            "from ftlab.engine.model.loader import apply_liger;"
            f"m = AutoModelForCausalLM.from_pretrained({str(tiny_llama)!r}); apply_liger(m);"
            "print(m.model.norm._get_name(), m.model.layers[0].mlp._get_name(), m.forward.__func__.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-3:] == ["LigerRMSNorm", "LigerSwiGLUMLP", "lce_forward"]
