"""Fine-tuning methods: which parameters train, and how they are optimised.

The runner calls three functions, in this order:

    model = apply_method(model, profile.method)                # full / freeze / LoRA family / GaLore
    args  = TrainingArguments(..., **training_overrides(profile.method, profile.model))
    trainer = Trainer(..., optimizers=(make_optimizer(model, profile.method, args), None))

`apply_method` returns the model to train (the same model for full, freeze and GaLore; a peft
model for LoRA, DoRA and QLoRA). `training_overrides` gives the TrainingArguments a method needs
(GaLore's optimizer, NEFTune). `make_optimizer` builds an optimizer when the method needs its
own parameter groups (LoRA+), else None and the Trainer builds AdamW. `trainable_summary` counts.
"""

from __future__ import annotations

import torch
from ftlab.engine.config import MethodConfig, ModelConfig

from ftlab.errors import UserError

from .freeze import apply_freeze
from .galore import galore_arguments
from .lora import apply_lora, loraplus_optimizer, merge_adapter

__all__ = ["apply_method", "make_optimizer", "trainable_summary", "training_overrides"]


def apply_method(model, method: MethodConfig, *, autocast: bool | None = None, adapter=None):
    """Set which parameters train; returns the model to hand to the Trainer.

    `autocast`: whether the Trainer runs bf16/fp16 mixed precision (None: guess — a GPU and a
    half-precision model); LoRA then keeps adapted inputs in the compute dtype.
    `adapter`: an existing LoRA adapter folder (model.adapter) — LoRA/DoRA continue training it
    (its own rank and targets apply); the other methods start from the base merged with it."""
    if autocast is None:
        autocast = torch.cuda.is_available() and model.dtype in (torch.bfloat16, torch.float16)
    kind = method.type
    if adapter and kind not in ("lora", "dora"):
        model = merge_adapter(model, adapter)
    if kind in ("full", "galore"):
        for param in model.parameters():
            param.requires_grad_(True)
    elif kind == "freeze":
        apply_freeze(model, method.freeze)
    elif kind in ("lora", "dora"):
        model = apply_lora(model, method, autocast=autocast, adapter=adapter)
    else:  # the schema's Literal keeps this unreachable
        raise UserError(f"method.type: unknown method {kind!r}")
    _train_new_head(model)
    _upcast_fp16_trainables(model)
    return model


def _train_new_head(model) -> None:
    """A new task head (rm's score head) always trains; with LoRA peft trains and saves it itself."""
    if not hasattr(model, "peft_config") and type(model).__name__.endswith("ForSequenceClassification"):
        for param in model.score.parameters():
            param.requires_grad_(True)


def _upcast_fp16_trainables(model) -> None:
    """fp16 mixed precision unscales fp32 gradients only: trainable fp16 parameters become fp32."""
    for param in model.parameters():
        if param.requires_grad and param.dtype == torch.float16:
            param.data = param.data.float()


def training_overrides(method: MethodConfig, model_cfg: ModelConfig | None = None, model=None) -> dict:
    """TrainingArguments keyword arguments the method and tricks need (GaLore optimizer, NEFTune)."""
    overrides: dict = {}
    if method.type == "galore":
        overrides.update(galore_arguments(method.galore, model))
    if model_cfg is not None and model_cfg.tricks.neftune_noise_alpha:
        overrides["neftune_noise_alpha"] = model_cfg.tricks.neftune_noise_alpha
    return overrides


def make_optimizer(model, method: MethodConfig, args):
    """The method's own optimizer (LoRA+: per-group learning rates), or None for the Trainer's default."""
    if method.type in ("lora", "dora") and method.lora.loraplus_lr_ratio:
        return loraplus_optimizer(model, method.lora, args)
    return None


def _numel(param) -> int:
    quant_state = getattr(param, "quant_state", None)  # bitsandbytes 4-bit packs two values per byte
    if quant_state is not None and getattr(quant_state, "shape", None) is not None:
        return int(torch.Size(quant_state.shape).numel())
    return param.numel()


def trainable_summary(model) -> tuple[int, int]:
    """(trainable, total) parameter counts; quantized weights count as their unpacked size."""
    trainable = total = 0
    for param in model.parameters():
        count = _numel(param)
        total += count
        if param.requires_grad:
            trainable += count
    return trainable, total
