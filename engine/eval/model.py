"""The profile's model for inference: base (+ adapter) in eval mode on the accelerator, and its tokenizer.

    model, tokenizer = load_for_inference(profile, log=print)

`model.name_or_path` may be an embedded name, a folder, a hub id in the local cache or a run dir of
`ftctl run` (its final/); `model.adapter` an adapter folder or a run dir (engine.infer.source
resolves both). The adapter is merged into the weights unless the base is quantized (then it stays
a peft wrapper). The tokenizer is the adapter's own when it saved one.
"""

from __future__ import annotations

import torch

from ftlab.engine.config import Profile
from ftlab.errors import UserError


def load_for_inference(profile: Profile, log=print):
    from ftlab.engine.infer.source import resolve_source
    from ftlab.engine.model.loader import load_model, load_tokenizer

    cfg = profile.model
    source = resolve_source(cfg.name_or_path, cfg.adapter, log=log)
    tokenizer = load_tokenizer(source.tokenizer, cfg.trust_remote_code, cfg.new_special_tokens)
    model = load_model(cfg, source.base, training=False, method=profile.method, tokenizer=tokenizer)
    quantized = getattr(model, "is_quantized", False) or getattr(model, "hf_quantizer", None) is not None
    if source.adapter is not None:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, str(source.adapter))
        except (OSError, ValueError, RuntimeError) as err:
            raise UserError(f"model.adapter: cannot apply {source.adapter} to {source.base}: {err}") from None
        if not quantized:
            model = model.merge_and_unload()
    if not quantized and torch.cuda.is_available():
        model.to("cuda")
    model.eval()
    log(f"model {source.describe()} on {next(model.parameters()).device}")
    return model, tokenizer


def context_length(model) -> int | None:
    """The model's maximum sequence length, if its config says."""
    return getattr(model.config, "max_position_embeddings", None)
