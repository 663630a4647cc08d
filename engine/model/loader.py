"""Load a tokenizer and a causal LM for training or inference from a resolved local folder.

    tokenizer = load_tokenizer(folder, new_special_tokens=["<tool>"])
    model = load_model(profile.model, folder, method=profile.method,
                       max_length=profile.data.cutoff_len, tokenizer=tokenizer)

What it decides, in order:
  config      RoPE scaling (linear / dynamic / yarn) when `max_length` exceeds the model's context;
              the MoE router auxiliary loss (Mixtral, Qwen-MoE) with its coefficient.
  weights     dtype (bf16 where supported, fp16 on older GPUs, fp32 on the CPU), attention kernel
              (sdpa, eager, flash_attention_2 only where flash-attn is installed, S² shift attention),
              quantization (bitsandbytes 4/8-bit, or a GPTQ/AWQ checkpoint where its package is there).
  vocabulary  embeddings resized to the tokenizer, new rows set to the mean of the old ones; the
              model is marked (`RESIZED_ATTR`) so the method trains embeddings and head.
  fast path   liger-kernel (fused linear cross-entropy, RMSNorm, RoPE, SwiGLU) on a GPU.
  training    non-reentrant gradient checkpointing, and train mode: `from_pretrained` returns eval
              mode, in which checkpointing silently does nothing.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import torch
from ftlab.engine.config import MethodConfig, ModelConfig

from ftlab.errors import UserError

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}

# Set on a model whose embeddings were resized: the method then trains embed_tokens and lm_head.
RESIZED_ATTR = "ftlab_resized_vocab"

# Model types whose config has a router auxiliary loss (output_router_logits / router_aux_loss_coef).
MOE_TYPES = ("mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "jamba", "jetmoe", "phimoe", "granitemoe",
             "deepseek_v2", "deepseek_v3", "dbrx", "minimax", "gpt_oss")

# Where each quantized-checkpoint method's package lives, and the pyproject extra that installs it.
_QUANT_PACKAGES = {"bnb": ("bitsandbytes", "quant"), "gptq": ("gptqmodel", "gptq"), "awq": ("awq", "awq")}


def accelerator() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(name: str) -> torch.dtype:
    """`auto` → bf16 on a GPU that supports it, fp16 on older GPUs, fp32 on the CPU."""
    if name != "auto":
        return _DTYPES[name]
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def pick_attention(name: str) -> str:
    if name == "flash_attention_2":
        if importlib.util.find_spec("flash_attn") is None:
            raise UserError("model.attn_implementation: flash_attention_2 needs the flash-attn package "
                            "(pip install flash-attn, GPU machines only); use sdpa instead")
        return name
    return "sdpa" if name == "auto" else name


def load_tokenizer(folder: str | Path, trust_remote_code: bool = False, new_special_tokens=()):
    """The tokenizer, with a pad token, and `new_special_tokens` added as special tokens."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if new_special_tokens:
        tokenizer.add_tokens(list(new_special_tokens), special_tokens=True)
    return tokenizer


# ---------------------------------------------------------------- config


def rope_scaling(config, kind: str | None, max_length: int | None) -> float | None:
    """Scale RoPE by ceil(max_length / context) when `max_length` exceeds the context; the factor or None."""
    context = getattr(config, "max_position_embeddings", None)
    if not kind or not max_length or not context or max_length <= context:
        return None
    factor = float(math.ceil(max_length / context))
    params = dict(getattr(config, "rope_parameters", None) or {})
    if not params and getattr(config, "rope_scaling", None) is None and not hasattr(config, "rope_parameters"):
        raise UserError(f"model.rope_scaling: {config.model_type} models do not use RoPE")
    params.update(rope_type=kind, factor=factor)
    if kind in ("dynamic", "yarn"):
        params["original_max_position_embeddings"] = context
    config.rope_parameters = params
    config.max_position_embeddings = int(context * factor)
    return factor


def moe_aux_loss(config, coef: float | None) -> bool:
    """Add the router load-balancing loss to the training loss of an MoE model (coef None: model default)."""
    if config.model_type not in MOE_TYPES or not hasattr(config, "output_router_logits"):
        if coef:
            raise UserError(f"model.moe_aux_loss_coef: {config.model_type} is not a mixture-of-experts model")
        return False
    if coef is not None:
        config.router_aux_loss_coef = coef
    config.output_router_logits = coef is None or coef > 0
    return config.output_router_logits


def load_config(cfg: ModelConfig, folder: str | Path, max_length: int | None = None):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(folder, trust_remote_code=cfg.trust_remote_code)
    rope_scaling(config, cfg.rope_scaling, max_length)
    return config


# ---------------------------------------------------------------- quantization


def require_quant_package(method: str) -> None:
    module, extra = _QUANT_PACKAGES[method]
    if importlib.util.find_spec(module) is None:
        raise UserError(f"method.quantization.method: {method} needs the {module} package "
                        f"(pip install 'ftlab[{extra}]')")


def check_prequantized(config, method: str, folder) -> None:
    """GPTQ/AWQ train LoRA on a checkpoint that is already quantized with that method."""
    found = getattr(config, "quantization_config", None) or {}
    found = found if isinstance(found, dict) else found.to_dict()
    if str(found.get("quant_method", "")).lower() != method:
        raise UserError(f"method.quantization.method: {method} needs a {method.upper()}-quantized checkpoint; "
                        f"{folder} is {found.get('quant_method') or 'not quantized'} (use bnb to quantize on load)")


def quantization_config(method: MethodConfig | None, dtype: torch.dtype):
    """A BitsAndBytesConfig for bnb 4/8-bit, or None (none asked, or GPTQ/AWQ: the checkpoint has its own)."""
    if method is None:
        return None
    quant = method.quantization
    if quant.method != "bnb":
        require_quant_package(quant.method)
        return None
    if quant.bits is None:
        return None
    require_quant_package("bnb")
    from transformers import BitsAndBytesConfig

    if quant.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    compute = dtype if quant.compute_dtype == "auto" else _DTYPES[quant.compute_dtype]
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=quant.type,
                              bnb_4bit_use_double_quant=quant.double_quant, bnb_4bit_compute_dtype=compute)


def _device_map():
    if torch.cuda.is_available():
        import os

        return {"": int(os.environ.get("LOCAL_RANK", "0"))}
    return {"": "cpu"}


# ---------------------------------------------------------------- vocabulary


def resize_embeddings(model, size: int) -> int:
    """Grow the embeddings (and an untied head) to `size` rows; new rows get the mean of the old ones."""
    old = model.get_input_embeddings().weight.shape[0]
    if size <= old:
        return 0
    model.resize_token_embeddings(size, mean_resizing=False)
    with torch.no_grad():
        for layer in {id(m): m for m in (model.get_input_embeddings(), model.get_output_embeddings())
                      if m is not None}.values():
            weight = layer.weight
            weight[old:] = weight[:old].float().mean(dim=0, keepdim=True).to(weight.dtype)
    return size - old


# ---------------------------------------------------------------- liger


def want_liger(setting: str, model_type: str) -> bool:
    """Whether to apply liger-kernel: `on` insists, `auto` needs a GPU, the package and a supported model."""
    if setting == "off":
        return False
    available = importlib.util.find_spec("liger_kernel") is not None
    if setting == "on":
        if not available:
            raise UserError("model.tricks.liger_kernel: on, but liger-kernel is not installed "
                            "(pip install 'ftlab[liger]')")
        if not torch.cuda.is_available():
            raise UserError("model.tricks.liger_kernel: on needs a GPU (its kernels are Triton); use auto or off")
    elif not (available and torch.cuda.is_available()):
        return False
    from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN

    if model_type not in MODEL_TYPE_TO_APPLY_LIGER_FN:
        if setting == "on":
            raise UserError(f"model.tricks.liger_kernel: no liger kernels for {model_type} models")
        return False
    return True


def apply_liger(model) -> None:
    """Swap in liger's fused kernels on this model instance (loss without materialised logits)."""
    from liger_kernel.transformers import _apply_liger_kernel_to_instance

    _apply_liger_kernel_to_instance(model=model, rope=True, rms_norm=True, swiglu=True,
                                    fused_linear_cross_entropy=True, cross_entropy=False)


# ---------------------------------------------------------------- the model


def enable_checkpointing(model) -> None:
    """Non-reentrant activation checkpointing, without inputs that require grad.

    transformers turns on `enable_input_require_grads()` with checkpointing (reentrant
    checkpointing needs it). Non-reentrant checkpointing does not, and that hook makes backward run
    through every layer: freeze-tuning the last 3 layers of a 7B model then costs a full backward
    (14,300 tok/s on the H200, where LlamaFactory gets 31,000). So it is switched off again, and
    backward stops at the lowest layer that trains.
    """
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x: the old name warns
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    model.disable_input_require_grads()


def load_model(cfg: ModelConfig, folder: str | Path, *, training: bool = True, method: MethodConfig | None = None,
               max_length: int | None = None, tokenizer=None, head: str = "causal_lm"):
    """The causal LM in `folder` with the profile's dtype, attention, quantization and tricks.
    `head="reward"`: the same base with a new one-output score head (sequence classification, rm)."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    dtype = pick_dtype(cfg.dtype)
    config = load_config(cfg, folder, max_length)
    auto_class = AutoModelForCausalLM
    if head == "reward":
        auto_class = AutoModelForSequenceClassification
        config.num_labels = 1  # the score is read at the last non-padding token
        if getattr(config, "pad_token_id", None) is None and tokenizer is not None:
            config.pad_token_id = tokenizer.pad_token_id
    attention = pick_attention(cfg.attn_implementation)
    if cfg.tricks.shift_attn and training:
        from .patches import shift_attention

        attention = shift_attention(config, attention, cfg.tricks.shift_attn_group_ratio)
    if training:
        moe_aux_loss(config, cfg.moe_aux_loss_coef)
    if method is not None and method.quantization.method != "bnb":
        check_prequantized(config, method.quantization.method, folder)
    quant = quantization_config(method, dtype)
    kwargs = {}
    if quant is not None or (method is not None and method.quantization.method != "bnb"):
        kwargs["device_map"] = _device_map()
    if quant is not None:
        kwargs["quantization_config"] = quant
    model = auto_class.from_pretrained(folder, config=config, dtype=dtype, attn_implementation=attention,
                                       trust_remote_code=cfg.trust_remote_code, **kwargs)
    if tokenizer is not None and (cfg.resize_vocab or cfg.new_special_tokens):
        size = len(tokenizer)
        if cfg.resize_vocab:
            size = max(size, model.get_input_embeddings().weight.shape[0])
            size = 64 * math.ceil(size / 64)  # tensor-core friendly
        resize_embeddings(model, size)
        setattr(model, RESIZED_ATTR, True)
    if training:
        if head == "causal_lm" and want_liger(cfg.tricks.liger_kernel, config.model_type):
            apply_liger(model)
        if cfg.gradient_checkpointing:
            enable_checkpointing(model)
        model.train()
    else:
        model.eval()
    return model
