"""pt and sft: transformers.Trainer with the causal-LM loss on ftlab's (packed) batches."""

from __future__ import annotations

from . import Stage, StageSetup


def build(setup: StageSetup):
    from transformers import Trainer

    return Trainer(
        model=setup.model,
        args=setup.args,
        optimizers=(setup.optimizer, None),
        train_dataset=setup.data.train,
        eval_dataset=setup.data.eval,
        data_collator=setup.collator,
        processing_class=setup.tokenizer,
        callbacks=setup.callbacks,
    )


STAGES = {"pt": Stage(build), "sft": Stage(build)}
