"""Pack tokenized samples into sequences of at most cutoff_len, without cross-contamination.

    bins = greedy_knapsack([700, 300, 1000, 20], capacity=1024)   # [[2], [0, 1, 3]] (indices)

Each packed row keeps its samples whole and carries `position_ids` that restart at 0 for every
sample. transformers (5.x) reads restarting position_ids as packed sequences: flash-attention
gets varlen boundaries from them and SDPA/eager/flex build a block-diagonal causal mask — when
no 2D attention_mask is passed, which is why the packed collator leaves it out. Samples never
attend to one another and the loss equals the unpacked loss (tests/data/test_packing.py).
"""

from __future__ import annotations

import bisect

import numpy as np


def greedy_knapsack(lengths: list[int], capacity: int) -> list[list[int]]:
    """Bins of sample indices: fill each bin with the longest sample that still fits (LlamaFactory's rule)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    keys = [lengths[i] for i in order]
    bins: list[list[int]] = []
    while order:
        room = capacity
        current: list[int] = []
        while order:
            at = bisect.bisect_right(keys, room) - 1
            if at < 0:
                break
            room -= keys[at]
            current.append(order[at])
            del keys[at], order[at]
        if not current:  # longer than capacity (cannot happen after truncation): alone in a bin
            current.append(order.pop())
            keys.pop()
        bins.append(current)
    return bins


def pack_rows(ids: list[np.ndarray], labels: list[np.ndarray], capacity: int):
    """Yield (input_ids, labels, position_ids) of packed rows built from the given samples."""
    for members in greedy_knapsack([len(x) for x in ids], capacity):
        yield (np.concatenate([ids[i] for i in members]),
               np.concatenate([labels[i] for i in members]),
               np.concatenate([np.arange(len(ids[i]), dtype=np.int32) for i in members]))
