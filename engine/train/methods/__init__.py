"""Fine-tuning methods: decide which parameters train (full, LoRA).

`apply_method` returns the model to train — the same model for full fine-tuning, a peft model
for LoRA — and `trainable_summary` reports what will train.
"""

from __future__ import annotations

from ftlab.engine.config import MethodConfig
from ftlab.errors import UserError


def apply_method(model, method: MethodConfig):
    kind = method.type
    if kind == "full":
        for param in model.parameters():
            param.requires_grad_(True)
        return model
    if kind in ("lora", "dora"):
        return _apply_lora(model, method)
    raise UserError(f"method.type: {kind!r} is not available in this version yet (available: full, lora, dora)")


def _apply_lora(model, method: MethodConfig):
    from peft import LoraConfig, get_peft_model

    lora = method.lora
    target = "all-linear" if lora.target == "all" else list(lora.target)
    config = LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha if lora.alpha is not None else 2 * lora.rank,
        lora_dropout=lora.dropout,
        target_modules=target,
        modules_to_save=list(lora.modules_to_save) or None,
        use_dora=method.type == "dora",
        task_type="CAUSAL_LM",
    )
    try:
        return get_peft_model(model, config)
    except ValueError as err:
        raise UserError(f"method.lora.target: {err}") from None


def trainable_summary(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = total = 0
    for param in model.parameters():
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
    return trainable, total
