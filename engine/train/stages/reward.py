"""rm: reward model training with trl's RewardTrainer (pairwise Bradley–Terry loss).

The model is the base's `AutoModelForSequenceClassification` with one label: a linear `score`
head on the last hidden state, read at the last non-padding token. This is what exports cleanly:
final/ loads with plain transformers (`AutoModelForSequenceClassification.from_pretrained`), or
with peft's `AutoPeftModelForSequenceClassification` for a LoRA run (the head is saved with the
adapter as a module to save). LlamaFactory instead bolts a value head onto the causal LM
(trl's old AutoModelForCausalLMWithValueHead), which plain transformers cannot load.

The new head always trains, whatever the method (engine.train.methods).

Loss: −log σ(r_chosen − r_rejected), trl's. Metrics (trl's names): accuracy (share of pairs with
r_chosen > r_rejected), margin, mean_reward, min_reward, max_reward.
"""

from __future__ import annotations

from . import Stage, StageSetup, no_model_card, trainable_dtypes_kept
from .batches import RewardBatches


def _config_class():
    from trl import RewardConfig

    return RewardConfig


def arguments(profile) -> dict:
    return {"max_length": profile.data.cutoff_len}


def _trainer_class():
    from trl import RewardTrainer

    class FtlabRewardTrainer(RewardTrainer):
        """RewardTrainer whose datasets are ftlab's tokenized pairwise rows."""

        create_model_card = no_model_card

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            return dataset

    return FtlabRewardTrainer


def build(setup: StageSetup):
    with trainable_dtypes_kept(setup.model):
        return _trainer_class()(
            model=setup.model,
            args=setup.args,
            data_collator=RewardBatches(setup.collator),
            train_dataset=setup.data.train,
            eval_dataset=setup.data.eval,
            processing_class=setup.tokenizer,
            callbacks=setup.callbacks,
            optimizers=(setup.optimizer, None),
        )


STAGES = {"rm": Stage(build, head="reward", args_class=_config_class, arguments=arguments)}
