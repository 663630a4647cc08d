"""dpo: trl's DPOTrainer on ftlab's pairwise batches.

Every trl 1.16 DPO loss is available through `pref.loss_type` (sigmoid, hinge, ipo, robust, ...),
with `pref.beta` and `pref.label_smoothing`; `pref.ftx` adds trl's "sft" loss (the mean NLL of the
chosen answers) with that weight. The loss code, reference forward and reward metrics are trl's
(rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins, logps/*). What ftlab
replaces: the data — `_prepare_dataset` keeps ftlab's tokenized rows as they are, and the batches
come from ftlab's pairwise collator, renamed for trl (batches.py). The reference: reference.py.
"""

from __future__ import annotations

from . import Stage, StageSetup
from .batches import PreferenceBatches
from .reference import build_with_reference, final_model


def _config_class():
    from trl import DPOConfig

    return DPOConfig


def arguments(profile) -> dict:
    pref = profile.pref
    losses, weights = [pref.loss_type], [1.0]
    if pref.ftx:
        losses.append("sft")
        weights.append(pref.ftx)
    return {"beta": pref.beta, "loss_type": losses, "loss_weights": weights,
            "label_smoothing": pref.label_smoothing, "max_length": profile.data.cutoff_len}


def build(setup: StageSetup):
    from trl import DPOTrainer

    trainer = build_with_reference(DPOTrainer, setup, PreferenceBatches(setup.collator))
    return trainer


STAGES = {"dpo": Stage(build, args_class=_config_class, arguments=arguments, final_model=final_model)}
