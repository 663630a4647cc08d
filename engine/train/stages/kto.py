"""kto: trl's KTOTrainer on ftlab's KTO batches (one answer per row, kto_tag desirable or not).

The loss, the KL estimate and the reward metrics (rewards/chosen, rewards/rejected,
rewards/margins, logps/*, kl) are trl's. ftlab keeps its own data: `_prepare_dataset` leaves the
tokenized rows as they are, and each row's KL pair (its prompt with another row's answer) was
built by the data pipeline when encoding, like LlamaFactory — not from batch neighbours as trl
does, so the data can be shuffled (trl insists on sequential sampling for its own pairing; the
trainer is built with it and switched back to random sampling). The reference: reference.py.
"""

from __future__ import annotations

from ftlab.errors import UserError

from . import Stage, StageSetup
from .batches import UnpairedBatches
from .reference import build_with_reference, final_model


def _config_class():
    from trl import KTOConfig

    return KTOConfig


def arguments(profile) -> dict:
    if profile.train.batch_size < 2:
        raise UserError("train.batch_size: kto needs at least 2 rows per batch (the KL term is estimated "
                        f"across the batch); got {profile.train.batch_size}")
    pref = profile.pref
    return {"beta": pref.beta, "desirable_weight": pref.kto_desirable_weight,
            "undesirable_weight": pref.kto_undesirable_weight, "max_length": profile.data.cutoff_len,
            "train_sampling_strategy": "sequential"}


def build(setup: StageSetup):
    from trl import KTOTrainer

    trainer = build_with_reference(KTOTrainer, setup, UnpairedBatches(setup.collator))
    trainer.args.train_sampling_strategy = "random"  # our KL pairs do not depend on the batch order
    return trainer


STAGES = {"kto": Stage(build, args_class=_config_class, arguments=arguments, final_model=final_model)}
