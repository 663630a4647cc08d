"""LlamaFactory's method and model keys translate into the typed profile."""

from __future__ import annotations

from ftlab.engine.config import load_profile

LF = """\
model_name_or_path: smollm2-135m-instruct
stage: sft
do_train: true
use_dora: true
finetuning_type: lora
lora_rank: 16
lora_dropout: 0.05
use_rslora: true
loraplus_lr_ratio: 16.0
pissa_init: true
additional_target: embed_tokens,lm_head
quantization_bit: 4
quantization_method: bitsandbytes
quantization_type: fp4
double_quantization: false
flash_attn: fa2
shift_attn: true
rope_scaling: yarn
neftune_noise_alpha: 5
enable_liger_kernel: true
new_special_tokens: <tool>,<obs>
resize_vocab: true
moe_aux_loss_coef: 0.01
disable_gradient_checkpointing: false
pure_bf16: true
save_total_limit: 2
resume_from_checkpoint: last
dataset: identity
cutoff_len: 512
output_dir: out/x
"""


def test_lora_family_and_tricks(tmp_path):
    path = tmp_path / "lf.yaml"
    path.write_text(LF)
    p = load_profile(path).profile
    m, lora, q = p.method, p.method.lora, p.method.quantization
    assert m.type == "dora" and lora.rank == 16 and lora.dropout == 0.05
    assert lora.use_rslora and lora.loraplus_lr_ratio == 16.0 and lora.pissa_init
    assert lora.modules_to_save == ["embed_tokens", "lm_head"]
    assert (q.bits, q.method, q.type, q.double_quant) == (4, "bnb", "fp4", False)
    t = p.model.tricks
    assert p.model.attn_implementation == "flash_attention_2" and t.shift_attn and p.model.rope_scaling == "yarn"
    assert t.neftune_noise_alpha == 5 and t.liger_kernel == "auto"
    assert p.model.new_special_tokens == ["<tool>", "<obs>"] and p.model.resize_vocab
    assert p.model.moe_aux_loss_coef == 0.01 and p.model.gradient_checkpointing
    assert p.model.dtype == "bf16" and p.train.precision == "bf16"
    assert p.train.save_total_limit == 2 and p.train.resume_from_checkpoint == "last"


def test_freeze_and_galore(tmp_path):
    base = "model_name_or_path: m\nstage: pt\ndo_train: true\ndataset: d\noutput_dir: o\n"
    path = tmp_path / "freeze.yaml"
    path.write_text(base + "finetuning_type: freeze\nfreeze_trainable_layers: 3\n"
                    "freeze_trainable_modules: mlp,self_attn\nfreeze_extra_modules: embed_tokens\n"
                    "enable_liger_kernel: false\ndisable_gradient_checkpointing: true\n")
    p = load_profile(path).profile
    f = p.method.freeze
    assert p.method.type == "freeze" and f.trainable_layers == 3
    assert f.trainable_modules == ["mlp", "self_attn"] and f.extra_modules == ["embed_tokens"]
    assert p.model.tricks.liger_kernel == "off" and not p.model.gradient_checkpointing
    path.write_text(base + "use_galore: true\nfinetuning_type: full\ngalore_target: all\ngalore_rank: 32\n"
                    "galore_update_interval: 100\ngalore_scale: 0.25\n")
    p = load_profile(path).profile
    g = p.method.galore
    assert p.method.type == "galore" and g.target == "all" and (g.rank, g.update_interval, g.scale) == (32, 100, 0.25)


def test_unsupported_quantization_method_names_the_key(tmp_path):
    import pytest

    from ftlab.errors import ProblemsError

    path = tmp_path / "q.yaml"
    path.write_text("model_name_or_path: m\nfinetuning_type: lora\nquantization_bit: 4\nquantization_method: hqq\n")
    with pytest.raises(ProblemsError, match=r"q.yaml:4: quantization_method: quantization method 'hqq'"):
        load_profile(path)
