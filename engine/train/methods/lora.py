"""The LoRA family through peft: LoRA, DoRA, rsLoRA, PiSSA initialisation, LoRA+ learning rates,
and LoRA on a quantized base (QLoRA with bitsandbytes; GPTQ/AWQ checkpoints).

On a quantized base nothing is upcast to fp32 (unlike peft's `prepare_model_for_kbit_training`,
which copies every non-quantized weight to fp32): only the adapters train, in fp32 unless
`lora.upcast_adapters` is off.
"""

from __future__ import annotations

from ftlab.engine.config import MethodConfig
from ftlab.engine.config.schema import LoraConfig
from ftlab.engine.model.loader import RESIZED_ATTR

from ftlab.errors import UserError

from .freeze import embedding_module_names


def peft_config(model, method: MethodConfig):
    """The peft LoraConfig the profile asks for."""
    from peft import LoraConfig as PeftLoraConfig

    lora = method.lora
    modules_to_save = list(lora.modules_to_save)
    if getattr(model, RESIZED_ATTR, False):
        modules_to_save += [m for m in embedding_module_names(model) if m not in modules_to_save]
    init = True
    if lora.pissa_init:
        init = "pissa" if lora.pissa_iter <= 0 else f"pissa_niter_{lora.pissa_iter}"
    return PeftLoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha if lora.alpha is not None else 2 * lora.rank,
        lora_dropout=lora.dropout,
        target_modules="all-linear" if lora.target == "all" else list(lora.target),
        modules_to_save=modules_to_save or None,
        use_dora=method.type == "dora",
        use_rslora=lora.use_rslora,
        init_lora_weights=init,
        # SEQ_CLS (rm's score head): peft then trains and saves the new head with the adapter
        task_type="SEQ_CLS" if type(model).__name__.endswith("ForSequenceClassification") else "CAUSAL_LM",
    )


def _check_adapter(adapter) -> str:
    from pathlib import Path

    if not (Path(adapter) / "adapter_config.json").is_file():
        raise UserError(f"model.adapter: {adapter} is not an adapter folder (no adapter_config.json)")
    return str(adapter)


def merge_adapter(model, adapter):
    """The base with an existing adapter merged in (full/freeze/GaLore starting from an adapter)."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, _check_adapter(adapter)).merge_and_unload()


def apply_lora(model, method: MethodConfig, autocast: bool = False, adapter=None):
    """Wrap `model` with the adapters. Under mixed precision (`autocast`), the layers' input stays in
    the compute dtype: peft would otherwise cast every adapted input to the fp32 adapter dtype, and
    autocast would save a second bf16 copy of it for the backward pass (one per adapted module)."""
    from peft import get_peft_model
    from peft.tuners.tuners_utils import BaseTunerLayer

    config = peft_config(model, method)
    try:
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, _check_adapter(adapter), is_trainable=True,
                                              autocast_adapter_dtype=method.lora.upcast_adapters)
        else:
            model = get_peft_model(model, config, autocast_adapter_dtype=method.lora.upcast_adapters)
    except (ValueError, NotImplementedError, TypeError) as err:
        key = "method.lora.target" if "target" in str(err) else "method.lora"
        raise UserError(f"{key}: {err}") from None
    if autocast:
        for module in model.modules():
            if isinstance(module, BaseTunerLayer):
                module.cast_input_dtype_enabled = False
    return model


def loraplus_optimizer(model, lora: LoraConfig, args):
    """AdamW with LoRA+ groups: B matrices at `loraplus_lr_ratio` × the learning rate of A."""
    import torch
    from peft.optimizers import create_loraplus_optimizer

    extra = {"loraplus_lr_embedding": lora.loraplus_lr_embedding} if lora.loraplus_lr_embedding else {}
    return create_loraplus_optimizer(
        model, torch.optim.AdamW, lr=args.learning_rate, loraplus_lr_ratio=lora.loraplus_lr_ratio,
        loraplus_weight_decay=args.weight_decay, betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon, **extra)
