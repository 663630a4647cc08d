"""ftlab batches → the key names trl's trainers read.

ftlab's collators (engine/data/collate.py) mark what trains with `labels` (-100 elsewhere); trl
1.16's DPO and KTO trainers read a `completion_mask` instead and build the labels themselves,
and its reward trainer reads no labels at all. These wrappers rename, nothing else: the padding,
the order (n chosen, then n rejected) and the KL pairs are ftlab's.
"""

from __future__ import annotations

IGNORE = -100


class _Renamed:
    def __init__(self, collate):
        self.collate = collate

    def __call__(self, rows):
        return self.rename(self.collate(rows))


class PreferenceBatches(_Renamed):
    """Pairwise batch → trl DPOTrainer: input_ids, attention_mask, completion_mask (no labels)."""

    @staticmethod
    def rename(batch: dict) -> dict:
        labels = batch.pop("labels")
        batch["completion_mask"] = (labels != IGNORE).long()
        return batch


class RewardBatches(_Renamed):
    """Pairwise batch → trl RewardTrainer: input_ids, attention_mask (the score is read at the last token)."""

    @staticmethod
    def rename(batch: dict) -> dict:
        batch.pop("labels")
        return batch


class UnpairedBatches(_Renamed):
    """KTO batch → trl KTOTrainer: completion_mask, KL_* and label."""

    @staticmethod
    def rename(batch: dict) -> dict:
        labels = batch.pop("labels")
        kl_labels = batch.pop("kl_labels")
        return {
            "input_ids": batch["input_ids"],
            "attention_mask": batch["attention_mask"],
            "completion_mask": (labels != IGNORE).long(),
            "KL_input_ids": batch["kl_input_ids"],
            "KL_attention_mask": batch["kl_attention_mask"],
            "KL_completion_mask": (kl_labels != IGNORE).long(),
            "label": batch["kto_tags"],
        }
