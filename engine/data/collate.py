"""Collators: lists of tokenized rows → padded torch tensors.

    collate = make_collator("sft", tokenizer)      # or "pt", "dpo", "kto", "predict", ...
    batch = collate([row, row, ...])               # input_ids, attention_mask, labels[, position_ids]

Sequences are right-padded to a multiple of 8, labels -100 on padding. For generation stages
(predict, eval, ppo) prompts are left-padded and `labels` holds the reference answers, padded
separately. Packed rows (with position_ids) get no 2D attention_mask: transformers then reads the
restarting position_ids as sample boundaries (see packing.py); padding is a separate sample with
its own positions and no labels. Packed batches also carry `use_cache=False` (a bool, not a
tensor): transformers skips the packed-sequence mask whenever it builds a KV cache, which a model
with `config.use_cache=True` does even in training, and samples would then see each other. The pairwise collator puts the n chosen sequences first, then the
n rejected ones, in one batch of 2n; the KTO collator adds `kto_tags` and the KL pairs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

IGNORE = -100
PAIRWISE_STAGES = ("rm", "dpo", "orpo", "simpo")
GENERATION_STAGES = ("predict", "eval", "ppo")


def _pad(seqs: list, value: int, length: int, left: bool = False) -> np.ndarray:
    out = np.full((len(seqs), length), value, dtype=np.int64)
    for row, seq in enumerate(seqs):
        n = len(seq)
        if n:
            if left:
                out[row, length - n:] = seq
            else:
                out[row, :n] = seq
    return out


def _target_length(seqs: list, multiple: int | None) -> int:
    longest = max((len(s) for s in seqs), default=0)
    if multiple and longest % multiple:
        longest += multiple - longest % multiple
    return max(longest, 1)


class Collator:
    """Pads input_ids/labels (and position_ids when packed) for causal-LM stages."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = 8, left: bool = False):
        self.pad_token_id = pad_token_id
        self.multiple = pad_to_multiple_of
        self.left = left

    def pad(self, ids: list, labels: list | None, positions: list | None) -> dict[str, Any]:
        import torch

        length = _target_length(ids, self.multiple)
        batch = {"input_ids": torch.from_numpy(_pad(ids, self.pad_token_id, length, self.left))}
        if labels is not None and self.left:  # generation: the reference answers, padded on their own
            batch["labels"] = torch.from_numpy(_pad(labels, IGNORE, _target_length(labels, self.multiple)))
        elif labels is not None:
            batch["labels"] = torch.from_numpy(_pad(labels, IGNORE, length))
        if positions is not None:
            pos = _pad(positions, 0, length)
            for row, seq in enumerate(positions):  # padding: a separate sample, positions from 0
                extra = length - len(seq)
                if extra:
                    pos[row, len(seq):] = np.arange(extra)
            batch["position_ids"] = torch.from_numpy(pos)
            # transformers only reads position_ids as sample boundaries when no KV cache is built
            batch["use_cache"] = False
        else:
            mask = _pad([np.ones(len(s), dtype=np.int64) for s in ids], 0, length, self.left)
            batch["attention_mask"] = torch.from_numpy(mask)
        return batch

    def __call__(self, rows: list[dict]) -> dict[str, Any]:
        ids = [r["input_ids"] for r in rows]
        labels = [r["labels"] for r in rows] if "labels" in rows[0] else None
        positions = [r["position_ids"] for r in rows] if "position_ids" in rows[0] else None
        return self.pad(ids, labels, positions)


class PairwiseCollator(Collator):
    """Rows with chosen_/rejected_ ids and labels → one batch: n chosen, then n rejected."""

    def __call__(self, rows: list[dict]) -> dict[str, Any]:
        ids = [r["chosen_input_ids"] for r in rows] + [r["rejected_input_ids"] for r in rows]
        labels = [r["chosen_labels"] for r in rows] + [r["rejected_labels"] for r in rows]
        return self.pad(ids, labels, None)


class KTOCollator(Collator):
    """Rows with input_ids/labels, the mismatched KL pair kl_input_ids/kl_labels, and kto_tag."""

    def __call__(self, rows: list[dict]) -> dict[str, Any]:
        import torch

        batch = self.pad([r["input_ids"] for r in rows], [r["labels"] for r in rows], None)
        kl = self.pad([r["kl_input_ids"] for r in rows], [r["kl_labels"] for r in rows], None)
        batch["kl_input_ids"] = kl["input_ids"]
        batch["kl_attention_mask"] = kl["attention_mask"]
        batch["kl_labels"] = kl["labels"]
        batch["kto_tags"] = torch.tensor([bool(r["kto_tag"]) for r in rows])
        return batch


def make_collator(stage: str, tokenizer, *, pad_to_multiple_of: int = 8):
    """The collator for `stage`; callable on a list of dataset rows."""
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    if stage in PAIRWISE_STAGES:
        return PairwiseCollator(pad_id, pad_to_multiple_of)
    if stage == "kto":
        return KTOCollator(pad_id, pad_to_multiple_of)
    return Collator(pad_id, pad_to_multiple_of, left=stage in GENERATION_STAGES)
