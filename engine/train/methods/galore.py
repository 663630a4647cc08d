"""GaLore: full-parameter training with low-rank projected gradients (galore-torch), through the
Trainer's own `optim="galore_adamw"` support.

The targets are resolved here to exact module names (every linear layer of the decoder for
`all`), so the result does not depend on how a transformers version spells `all-linear`.
"""

from __future__ import annotations

import importlib.util

import torch
from ftlab.engine.config.schema import GaloreConfig

from ftlab.errors import UserError


def galore_targets(model, target) -> list[str]:
    head = model.get_output_embeddings()
    names = [name for name, module in model.named_modules()
             if isinstance(module, torch.nn.Linear) and module is not head]
    if target == "all":
        return names
    chosen = [name for name in names if any(t in name.split(".") for t in target)]
    if not chosen:
        raise UserError(f"method.galore.target: no linear layer named {', '.join(target)}")
    return chosen


def galore_arguments(cfg: GaloreConfig, model=None) -> dict:
    """TrainingArguments keyword arguments for GaLore."""
    if importlib.util.find_spec("galore_torch") is None:
        raise UserError("method.type: galore needs the galore-torch package (pip install 'ftlab[galore]')")
    targets = galore_targets(model, cfg.target) if model is not None else (
        [".*"] if cfg.target == "all" else list(cfg.target))
    return {
        "optim": "galore_adamw_layerwise" if cfg.layerwise else "galore_adamw",
        "optim_target_modules": targets,
        "optim_args": f"rank={cfg.rank},update_proj_gap={cfg.update_interval},scale={cfg.scale},proj_type=std",
    }
