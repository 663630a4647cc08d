"""dpo: trl's DPOTrainer on ftlab's pairwise batches.

Every trl 1.16 DPO loss is available through `pref.loss_type` (sigmoid, hinge, ipo, robust, ...),
with `pref.beta` and `pref.label_smoothing`; `pref.ftx` adds trl's "sft" loss (the mean NLL of the
chosen answers) with that weight. The loss code, reference forward and reward metrics are trl's
(rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins, logps/*). What ftlab
replaces: the data — `_prepare_dataset` keeps ftlab's tokenized rows as they are, and the batches
come from ftlab's pairwise collator, renamed for trl (batches.py). The reference: reference.py.
"""

from __future__ import annotations

from . import Stage, StageSetup, no_model_card, trainable_dtypes_kept
from .batches import PreferenceBatches
from .reference import drop_fresh_reference_adapter, final_model, reference_model


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


def _trainer_class():
    from trl import DPOTrainer

    class FtlabDPOTrainer(DPOTrainer):
        """DPOTrainer whose datasets are ftlab's tokenized pairwise rows (no text to tokenize)."""

        create_model_card = no_model_card

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            return dataset

    return FtlabDPOTrainer


def build(setup: StageSetup):
    with trainable_dtypes_kept(setup.model):
        trainer = _trainer_class()(
            model=setup.model,
            ref_model=reference_model(setup),
            args=setup.args,
            data_collator=PreferenceBatches(setup.collator),
            train_dataset=setup.data.train,
            eval_dataset=setup.data.eval,
            processing_class=setup.tokenizer,
            callbacks=setup.callbacks,
            optimizers=(setup.optimizer, None),
        )
    drop_fresh_reference_adapter(trainer, setup.profile)
    return trainer


STAGES = {"dpo": Stage(build, args_class=_config_class, arguments=arguments, final_model=final_model)}
