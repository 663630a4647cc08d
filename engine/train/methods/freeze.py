"""Freeze tuning: train the last (or first) N decoder layers, optionally only some of their
modules, plus extra modules outside the layers (embeddings, head, final norm).

    method: {type: freeze, freeze: {trainable_layers: 3, trainable_modules: [mlp], extra_modules: [embed_tokens]}}
"""

from __future__ import annotations

import torch
from ftlab.engine.config.schema import FreezeConfig
from ftlab.engine.model.loader import RESIZED_ATTR

from ftlab.errors import UserError


def decoder_layers(model) -> tuple[str, torch.nn.ModuleList]:
    """(qualified name, list) of the decoder's repeated blocks: the ModuleList of num_hidden_layers."""
    count = getattr(model.config, "num_hidden_layers", None)
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == count and name.endswith("layers"):
            return name, module
    raise UserError(f"method.type: freeze cannot find the decoder layers of this {model.config.model_type} model")


def _child_names(module) -> set[str]:
    return {part for name, _ in module.named_modules() if name for part in name.split(".") if not part.isdigit()}


def embedding_module_names(model) -> list[str]:
    """Short names of the input embeddings and the head (e.g. embed_tokens, lm_head)."""
    names = []
    for target in (model.get_input_embeddings(), model.get_output_embeddings()):
        for name, module in model.named_modules():
            if module is target and name:
                names.append(name.split(".")[-1])
                break
    return list(dict.fromkeys(names))


def apply_freeze(model, cfg: FreezeConfig) -> None:
    prefix, layers = decoder_layers(model)
    total = len(layers)
    n = cfg.trainable_layers
    if n == 0 or abs(n) > total:
        raise UserError(f"method.freeze.trainable_layers: {n} is outside 1..{total} (or -{total}..-1) "
                        f"for this {total}-layer model")
    indices = list(range(total - n, total)) if n > 0 else list(range(-n))
    modules = cfg.trainable_modules
    if modules != "all":
        known = _child_names(layers[0])
        unknown = sorted(set(modules) - known)
        if unknown:
            raise UserError(f"method.freeze.trainable_modules: {', '.join(unknown)} not in a decoder layer "
                            f"(known: {', '.join(sorted(known))})")
    extras = list(cfg.extra_modules)
    if getattr(model, RESIZED_ATTR, False):
        extras += embedding_module_names(model)
    outside = {part for name, _ in model.named_modules() if name and not name.startswith(prefix + ".")
               for part in name.split(".")}
    unknown = sorted(set(extras) - outside)
    if unknown:
        raise UserError(f"method.freeze.extra_modules: {', '.join(unknown)} not found outside the decoder layers "
                        f"(known: {', '.join(sorted(outside - {prefix.split('.')[-1]}))})")
    layer_prefixes = tuple(f"{prefix}.{i}." for i in indices)
    for name, param in model.named_parameters():
        parts = name.split(".")
        if name.startswith(layer_prefixes):
            train = modules == "all" or any(m in parts for m in modules)
        else:
            train = not name.startswith(prefix + ".") and any(m in parts for m in extras)
        param.requires_grad_(train)
