"""Estimate a training run's accelerator memory, per method, from the model's config.json alone.

    est = estimate(profile, read_shape(folder / "config.json"))
    est.total_gib, est.parts   # weights, gradients, optimizer, activations, logits, overhead

Torch-free (ftctl estimate runs anywhere). The figures are first-order formulas, checked against
the H200 measurements of engine/bench/methods.py (docs/bench/methods.md):

  weights      parameters × bytes (bf16 2, fp32 4; bnb 4-bit 0.5 + quantization constants on the
               decoder's linear layers, 8-bit 1), embeddings/head/norms at the model dtype
  gradients    trainable parameters × their bytes (adapters fp32 unless lora.upcast_adapters is off)
  optimizer    AdamW: two states per trainable parameter in the parameter's dtype (GaLore: the
               projected states of rank r plus the projector, regular states for the rest)
  activations  per token and layer, with SDPA/flash attention (no score matrix): norms 6h (2h
               with liger), attention 4h + 2·kv, the gated MLP h + 4·I (3·I with liger; ×k experts
               per token for MoE), LoRA dropout a copy of each adapted input; with checkpointing
               only each layer's input (h) plus one layer recomputed
  logits       batch × seq × vocab: bf16 logits, their fp32 copy and its gradient; ~0 with
               liger's fused linear cross-entropy
  overhead     CUDA context and allocator slack (~0.6 GiB + 10%)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

GIB = 2**30
CONTEXT_GIB = 0.6


@dataclass
class Shape:
    """The numbers of a decoder-only transformer that memory depends on."""

    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool = False
    experts: int = 1
    experts_per_token: int = 1
    model_type: str = "llama"
    qkv_bias: bool = False  # Qwen2 and attention_bias models

    @property
    def attn_linears(self) -> list[tuple[int, int]]:
        h, q, kv = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        return [(h, q), (h, kv), (h, kv), (q, h)]

    @property
    def mlp_linears(self) -> list[tuple[int, int]]:
        h, i = self.hidden, self.intermediate
        return [(h, i), (h, i), (i, h)] * self.experts

    def layer_params(self) -> int:
        linear = sum(a * b for a, b in self.attn_linears + self.mlp_linears)
        router = self.hidden * self.experts if self.experts > 1 else 0
        bias = (self.heads + 2 * self.kv_heads) * self.head_dim if self.qkv_bias else 0
        return linear + router + bias + 2 * self.hidden

    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied else 2) + self.hidden

    def total_params(self) -> int:
        return self.layers * self.layer_params() + self.embedding_params()


def shape_from_config(config: dict) -> Shape:
    text = config.get("text_config") or config
    heads = text.get("num_attention_heads") or text["n_head"]
    hidden = text["hidden_size"]
    return Shape(
        hidden=hidden,
        layers=text["num_hidden_layers"],
        intermediate=text.get("intermediate_size") or 4 * hidden,
        heads=heads,
        kv_heads=text.get("num_key_value_heads") or heads,
        head_dim=text.get("head_dim") or hidden // heads,
        vocab=text["vocab_size"],
        tied=bool(text.get("tie_word_embeddings", False)),
        experts=text.get("num_local_experts") or text.get("num_experts") or 1,
        experts_per_token=text.get("num_experts_per_tok") or 1,
        model_type=text.get("model_type", config.get("model_type", "")),
        qkv_bias=bool(text.get("attention_bias")) or text.get("model_type") in ("qwen2", "qwen2_moe"),
    )


def read_shape(path: str | Path) -> Shape:
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    return shape_from_config(json.loads(path.read_text(encoding="utf-8")))


def synthetic_shape(name: str, vocab: int = 49152) -> Shape:
    """The shapes the GPU benchmark builds (ftlab.engine.model.synthetic.SHAPES)."""
    from ftlab.engine.model.synthetic import SHAPES

    class_name, kwargs = SHAPES[name]
    config = dict(kwargs, vocab_size=vocab, model_type=class_name.removesuffix("Config").lower())
    if class_name == "GemmaConfig":
        config["tie_word_embeddings"] = True
    return shape_from_config(config)


@dataclass
class Estimate:
    method: str
    parts: dict[str, float]  # GiB
    params: int
    trainable: int
    tokens_per_step: int
    flops_per_token: float
    notes: list[str] = field(default_factory=list)
    activations_gib: dict[str, float] = field(default_factory=dict)  # with and without checkpointing

    @property
    def total_gib(self) -> float:
        return sum(self.parts.values())

    def as_dict(self) -> dict:
        return {"method": self.method, "total_gib": round(self.total_gib, 2),
                "parts_gib": {k: round(v, 3) for k, v in self.parts.items()},
                "params": self.params, "trainable": self.trainable, "tokens_per_step": self.tokens_per_step,
                "flops_per_token": self.flops_per_token, "notes": self.notes,
                "activations_gib": {k: round(v, 3) for k, v in self.activations_gib.items()}}


def _bytes(dtype: str) -> int:
    return 4 if dtype == "fp32" else 2


def _lora_targets(shape: Shape, target) -> list[tuple[int, int]]:
    names_attn = ["q_proj", "k_proj", "v_proj", "o_proj"]
    names_mlp = ["gate_proj", "up_proj", "down_proj"]
    chosen = []
    for names, linears in ((names_attn, shape.attn_linears), (names_mlp * shape.experts, shape.mlp_linears)):
        for name, dims in zip(names, linears):
            if target == "all" or name in target:
                chosen.append(dims)
    return chosen


def estimate(profile, shape: Shape, *, method: str | None = None, quant_bits: int | None = -1,
             liger: bool | None = None) -> Estimate:
    """Memory of one training step for `profile` on a model of `shape` (method/quantization overridable)."""
    m, model, data, train = profile.method, profile.model, profile.data, profile.train
    kind = method or m.type
    bits = m.quantization.bits if quant_bits == -1 else quant_bits
    dtype = "bf16" if model.dtype == "auto" else model.dtype
    wbytes = _bytes(dtype)
    batch, seq = train.batch_size, data.cutoff_len
    tokens = batch * seq
    if liger is None:
        liger = model.tricks.liger_kernel != "off"
    notes: list[str] = []
    total = shape.total_params()
    linear_params = shape.layers * sum(a * b for a, b in shape.attn_linears + shape.mlp_linears)
    rest = total - linear_params

    # weights
    if bits == 4 and kind in ("lora", "dora"):
        consts = 1 / 64 * (1.0 + 1 / 256 * 4 if m.quantization.double_quant else 4)  # absmax per 64 weights
        weights = linear_params * (0.5 + consts) + rest * wbytes
    elif bits == 8 and kind in ("lora", "dora"):
        weights = linear_params * (1 + 4 / 4096) + rest * wbytes
    else:
        bits = None
        weights = total * wbytes

    # trainable parameters, gradient and optimizer bytes per trainable parameter
    galore_states = 0.0
    if kind in ("full", "galore"):
        trainable = total
        gbytes = obytes_each = wbytes
        if kind == "galore":
            r = m.galore.rank
            targets = shape.layers * (shape.attn_linears + shape.mlp_linears)
            projected = sum(min(a, b) * r + 2 * r * max(a, b) for a, b in targets)
            galore_states = projected * 4 + (total - linear_params) * 2 * wbytes
    elif kind == "freeze":
        n = abs(m.freeze.trainable_layers)
        trainable = n * shape.layer_params()
        extras = set(m.freeze.extra_modules)
        if "embed_tokens" in extras:
            trainable += shape.vocab * shape.hidden
        if "lm_head" in extras and not shape.tied:
            trainable += shape.vocab * shape.hidden
        gbytes = obytes_each = wbytes
    else:
        r = m.lora.rank
        targets = _lora_targets(shape, m.lora.target)
        trainable = shape.layers * sum(r * (a + b) + (b if kind == "dora" else 0) for a, b in targets)
        gbytes = obytes_each = 4 if m.lora.upcast_adapters else wbytes
    gradients = trainable * gbytes
    optimizer = galore_states if kind == "galore" else trainable * 2 * obytes_each
    if kind == "full" and wbytes == 2:
        notes.append("full: bf16 weights and AdamW states (pure bf16); fp32 would double weights and states")

    # activations (bf16 elements saved per token per layer): two RMSNorms (fp32 internals, or liger's
    # 1h each), attention inputs + SDPA's q, k, v, out + o_proj input, MLP input + SwiGLU internals
    # (gate, up, act, product; liger recomputes the activation); LoRA dropout copies each adapted input
    h, i, kv = shape.hidden, shape.intermediate, shape.kv_heads * shape.head_dim
    norms = (2 if liger else 6) * h
    attn = 4 * h + 2 * kv
    mlp = h + (3 if liger else 4) * i * shape.experts_per_token
    per_layer = norms + attn + mlp
    if kind in ("lora", "dora") and m.lora.dropout > 0:
        per_layer += 1.5 * sum(a for a, _ in _lora_targets(shape, m.lora.target))
    act_bytes = 2
    full_acts = tokens * per_layer * shape.layers * act_bytes
    ckpt_acts = tokens * (h * shape.layers + per_layer) * act_bytes
    if kind == "freeze":  # frozen layers below the trained ones keep no activations for backward
        trained = min(abs(m.freeze.trainable_layers), shape.layers)
        full_acts = tokens * per_layer * trained * act_bytes
        ckpt_acts = tokens * (h * trained + per_layer) * act_bytes
    activations = ckpt_acts if model.gradient_checkpointing else full_acts

    logits = 0.0 if liger else tokens * shape.vocab * (2 + 4 + 4)
    if liger:
        notes.append("liger (on a GPU): fused linear cross-entropy, the logits are never materialised")
    base = weights + gradients + optimizer + activations + logits
    parts = {
        "weights": weights / GIB,
        "gradients": gradients / GIB,
        "optimizer": optimizer / GIB,
        "activations": activations / GIB,
        "logits": logits / GIB,
        "overhead": CONTEXT_GIB + 0.10 * base / GIB,
    }
    # 6N per token for full training, 4N when the base is frozen (no weight gradients), plus causal
    # attention's 6·L·s·h (QKᵀ and AV, forward and backward)
    flops = (6 if kind in ("full", "galore") else 4) * total + 6 * shape.layers * h * seq
    return Estimate(kind if not bits else f"q{kind} ({bits}-bit base)", parts, total, trainable, tokens,
                    float(flops), notes, {"with_checkpointing": ckpt_acts / GIB,
                                          "without_checkpointing": full_acts / GIB})


def compare(profile, shape: Shape) -> list[Estimate]:
    """The same run under each method: full, freeze, LoRA, QLoRA 4-bit, GaLore."""
    return [estimate(profile, shape, method="full", quant_bits=None),
            estimate(profile, shape, method="freeze", quant_bits=None),
            estimate(profile, shape, method="lora", quant_bits=None),
            estimate(profile, shape, method="lora", quant_bits=4),
            estimate(profile, shape, method="galore", quant_bits=None)]
