"""Load a tokenizer and a causal LM for training or inference from a resolved local folder.

Picks the dtype (bf16 where the accelerator supports it, fp32 on the CPU), the attention
kernel, and switches on non-reentrant gradient checkpointing when asked. The model is put in
train mode for training: `from_pretrained` returns eval mode, in which checkpointing silently
does nothing.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ftlab.engine.config import ModelConfig
from ftlab.errors import UserError

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


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
        import importlib.util

        if importlib.util.find_spec("flash_attn") is None:
            raise UserError("model.attn_implementation: flash_attention_2 needs the flash-attn package "
                            "(pip install flash-attn, GPU machines only); use sdpa instead")
        return name
    return "sdpa" if name == "auto" else name


def load_tokenizer(folder: str | Path, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(cfg: ModelConfig, folder: str | Path, *, training: bool = True):
    """The causal LM in `folder` with the profile's dtype, attention and checkpointing."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        folder,
        dtype=pick_dtype(cfg.dtype),
        attn_implementation=pick_attention(cfg.attn_implementation),
        trust_remote_code=cfg.trust_remote_code,
    )
    if training:
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.config.use_cache = False
            model.enable_input_require_grads()
        model.train()
    else:
        model.eval()
    return model
