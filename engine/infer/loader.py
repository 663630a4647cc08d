"""Load a `ModelSource` onto a device: model in eval mode (+ LoRA adapter merged in) and tokenizer.

The adapter is merged into the base weights (`merge_and_unload`), so decoding costs the same as the
plain model and the engine's batched steps and CUDA graphs see ordinary linear layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ftlab.errors import UserError

from .source import ModelSource

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}

# ChatML, for tokenizers that come without a chat template (random-weight test models, base models).
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


@dataclass
class Loaded:
    model: object
    tokenizer: object
    device: torch.device
    dtype: torch.dtype


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA device is available here")
    return torch.device(device)


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        # fp32 on the CPU: bf16 matmuls are slow there, and fp32 keeps batched == unbatched greedy
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype}: expected one of auto, {', '.join(sorted(DTYPES))}")
    return DTYPES[dtype]


def load(source: ModelSource, device: str = "auto", dtype: str = "auto") -> Loaded:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ftlab.engine.quiet import quiet_libraries

    quiet_libraries()
    dev = pick_device(device)
    torch_dtype = pick_dtype(dtype, dev)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.tokenizer)
        model = AutoModelForCausalLM.from_pretrained(source.base, dtype=torch_dtype, attn_implementation="sdpa")
    except (OSError, ValueError) as err:
        raise UserError(f"cannot load model {source.describe()}: {err}") from None
    if source.adapter is not None:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, str(source.adapter)).merge_and_unload()
        except (OSError, ValueError, RuntimeError) as err:
            raise UserError(f"cannot apply adapter {source.adapter} to {source.base}: {err}") from None
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHATML
    model.to(dev)
    model.eval()
    return Loaded(model=model, tokenizer=tokenizer, device=dev, dtype=torch_dtype)
