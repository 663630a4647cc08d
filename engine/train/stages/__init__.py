"""Training stages: which Trainer optimises which objective on the batches of `engine.data`.

The runner (engine/train/runner.py) asks the stage, in this order:

    stage = stage_for(profile.stage)             # UserError for a stage this version cannot train
    extra = stage.arguments(profile)             # the stage's TrainingArguments fields (β, losses...); checks
    model = load_model(..., head=stage.head)     # "causal_lm", or "reward" (a one-output score head)
    args  = training_arguments(..., {**method_overrides, **extra}, args_class=stage.args_class())
    trainer = stage.build(StageSetup(...))       # a transformers / trl Trainer, ready to train()
    save_final(stage.final_model(trainer), ...)  # what goes to final/

One module per family, imported only when its stage runs (trl is heavy):

    sft.py     pt, sft        transformers.Trainer (causal-LM loss)
    reward.py  rm             trl RewardTrainer (Bradley–Terry on a sequence-classification score head)
    dpo.py     dpo            trl DPOTrainer (every trl DPO loss)
    odds.py    orpo, simpo    trl's experimental ORPOTrainer / CPOTrainer (loss_type simpo)
    kto.py     kto            trl KTOTrainer (with the KL pairs built by the data pipeline)
    reference.py              the dpo/kto reference: the adapter switched off, a frozen copy, or pref.ref_model
    batches.py                ftlab's collated batches renamed to the keys trl reads

Each trl trainer is subclassed thinly so that it takes ftlab's tokenized rows and collators
instead of tokenizing text itself. ppo is missing: trl 1.16 removed its PPOTrainer.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ftlab.errors import UserError

# stage → the module whose STAGES dict holds its `Stage`
MODULES = {"pt": "sft", "sft": "sft", "rm": "reward", "dpo": "dpo", "orpo": "odds", "simpo": "odds", "kto": "kto"}
NOT_YET = {"ppo": "trl 1.16 ships no PPO trainer any more, and ftlab has none of its own yet"}


@dataclass
class StageSetup:
    """Everything a stage needs to build its Trainer."""

    profile: Any
    folder: Any  # the resolved model folder
    model: Any
    tokenizer: Any
    args: Any  # TrainingArguments (or the trl config subclass the stage asked for)
    data: Any  # PreparedData
    collator: Callable
    optimizer: Any = None
    callbacks: list = field(default_factory=list)


@contextmanager
def trainable_dtypes_kept(model):
    """trl's trainers cast a quantized model's trainable parameters to bf16 when they are built
    (their QLoRA recipe). ftlab's method code has already chosen those dtypes (`lora.upcast_adapters`:
    fp32 adapters by default), and a bf16 score head breaks an fp32 forward: they are put back."""
    dtypes = {name: param.dtype for name, param in model.named_parameters() if param.requires_grad}
    yield
    for name, param in model.named_parameters():
        if name in dtypes and param.dtype != dtypes[name]:
            param.data = param.data.to(dtypes[name])


def no_model_card(trainer, *args, **kwargs) -> None:
    """For trl trainers' `create_model_card`: trl writes a README.md into the run dir at every
    checkpoint, naming the base model "None" and linking to the hub; a run is described by its
    config.yaml and metrics.jsonl instead."""


def _no_arguments(profile) -> dict:
    return {}


def _trained_model(trainer):
    return trainer.model


@dataclass(frozen=True)
class Stage:
    """How one stage trains: its model head, its TrainingArguments class and fields, its Trainer."""

    build: Callable[[StageSetup], Any]
    head: str = "causal_lm"
    args_class: Callable[[], type] | None = None  # returns the TrainingArguments subclass (imported lazily)
    arguments: Callable[[Any], dict] = _no_arguments
    final_model: Callable[[Any], Any] = _trained_model


def available() -> tuple[str, ...]:
    return tuple(MODULES)


def stage_for(name: str) -> Stage:
    """The Stage for `name`; a UserError that says why for a stage this version cannot train."""
    if name not in MODULES:
        why = NOT_YET.get(name, "not a training stage")
        raise UserError(f"stage: {name!r} is not available in this version yet ({why}; trainable stages: "
                        f"{', '.join(MODULES)})")
    return importlib.import_module(f"{__name__}.{MODULES[name]}").STAGES[name]
