"""orpo and simpo: trl's experimental ORPOTrainer and CPOTrainer (loss_type simpo) on ftlab's batches.

Both are reference-free. The losses and reward metrics are trl's own (`odds_ratio_loss`,
`cpo_loss`, `get_batch_loss_metrics`: rewards/chosen, rewards/rejected, rewards/accuracies,
rewards/margins, logps/*, nll_loss, log_odds_*). ftlab replaces the data side, like LlamaFactory:
`tokenize_row` keeps ftlab's tokenized rows, and `concatenated_forward` reads ftlab's pairwise
batch (n chosen then n rejected, `labels` -100 outside the answers) and scores it with trl's
`get_batch_logps`.

- orpo: loss = NLL(chosen answer) − β·mean log σ(log-odds ratio), with the length-averaged
  log-probabilities trl uses. The NLL covers the answer tokens only (the ORPO paper and
  LlamaFactory; trl's own forward also counts the prompt).
- simpo: loss = −log σ(β·(avg logp chosen − avg logp rejected) − γ), plus `pref.ftx` × the
  NLL of the chosen answers (trl's cpo_alpha; 0 gives the SimPO paper's loss).
"""

from __future__ import annotations

import warnings

from . import Stage, StageSetup, no_model_card, trainable_dtypes_kept

IGNORE = -100


def pairwise_forward(trainer, model, batch, average: bool):
    """Policy log-probabilities of the chosen and rejected answers of one ftlab batch, their logits,
    and the mean NLL of the chosen answer tokens (trl's concatenated_forward contract)."""
    kwargs = {"output_router_logits": True} if trainer.aux_loss_enabled else {}
    outputs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False, **kwargs)
    logits, labels = outputs.logits, batch["labels"]
    n = labels.shape[0] // 2
    sums = trainer.get_batch_logps(logits, labels, average_log_prob=False)
    counts = (labels[:, 1:] != IGNORE).sum(-1).clamp(min=1)
    logps = sums / counts if average else sums
    nll = -sums[:n].sum() / counts[:n].sum()
    result = (logps[:n], logps[n:], logits[:n], logits[n:], nll)
    return result + (outputs.aux_loss,) if trainer.aux_loss_enabled else result


def _experimental(module: str, name: str):
    import importlib

    with warnings.catch_warnings():  # trl.experimental announces itself on import
        warnings.simplefilter("ignore")
        return getattr(importlib.import_module(f"trl.experimental.{module}"), name)


def _subclass(base, average: bool):
    class FtlabPairwiseTrainer(base):
        """trl's trainer on ftlab's tokenized pairwise rows and batches."""

        create_model_card = no_model_card

        def tokenize_row(self, feature, model=None):
            return feature  # already tokenized, truncated and masked by engine.data

        def concatenated_forward(self, model, batch):
            return pairwise_forward(self, model, batch, average)

    FtlabPairwiseTrainer.__name__ = f"Ftlab{base.__name__}"
    return FtlabPairwiseTrainer


def _build(base_module: str, base_name: str):
    def build(setup: StageSetup):
        trainer_class = _subclass(_experimental(base_module, base_name), average=True)
        with trainable_dtypes_kept(setup.model):
            return trainer_class(
                model=setup.model,
                args=setup.args,
                data_collator=setup.collator,
                train_dataset=setup.data.train,
                eval_dataset=setup.data.eval,
                processing_class=setup.tokenizer,
                callbacks=setup.callbacks,
                optimizers=(setup.optimizer, None),
            )
    return build


def orpo_arguments(profile) -> dict:
    return {"beta": profile.pref.beta, "max_length": profile.data.cutoff_len}


def simpo_arguments(profile) -> dict:
    pref = profile.pref
    return {"loss_type": "simpo", "beta": pref.beta, "simpo_gamma": pref.simpo_gamma, "cpo_alpha": pref.ftx,
            "max_length": profile.data.cutoff_len}


STAGES = {
    "orpo": Stage(_build("orpo", "ORPOTrainer"), args_class=lambda: _experimental("orpo", "ORPOConfig"),
                  arguments=orpo_arguments),
    "simpo": Stage(_build("cpo", "CPOTrainer"), args_class=lambda: _experimental("cpo", "CPOConfig"),
                   arguments=simpo_arguments),
}
