"""The KV cache shared by every running request: one row (slot) per sequence, one shared timeline.

Layout per layer: keys/values `[slots, kv_heads, columns, head_dim]`. All running rows write their
new token at the same column `col` each decode step; a row's prompt is copied in so that it ends
just before `col`. Which columns a row may attend to is kept in `mask[slots, columns]`, and each
row carries its own position ids, so rows of different lengths (and gaps in a row) are fine.
Running rows are kept packed in `[0, rows)`, so a decode step works on the views `[:rows, :, :cols]`
without copying. When the timeline reaches the end, every row is shifted left by the free prefix.

`growable=True` (CPU, eager): the tensors grow by doubling when more slots or columns are needed.
`growable=False` (GPU): one fixed allocation with fixed addresses, so decode steps can be captured
as CUDA graphs.

The model sees this as a transformers `Cache` whose layers write one column per step; the decode
step passes a prepared 4D boolean mask, so transformers' own mask building is skipped.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache, CacheLayerMixin


class SlotLayer(CacheLayerMixin):
    """One attention layer's slice of the slot cache."""

    is_compileable = True

    def __init__(self, owner: SlotCache):
        super().__init__()
        self.owner = owner

    def lazy_initialization(self, key_states, value_states) -> None:  # allocated by the owner
        raise RuntimeError("SlotLayer is allocated by SlotCache.allocate")

    def update(self, key_states, value_states, *args, **kwargs):
        rows = key_states.shape[0]
        cols = self.owner.view_cols
        self.keys[:rows].index_copy_(2, self.owner.col, key_states)
        self.values[:rows].index_copy_(2, self.owner.col, value_states)
        return self.keys[:rows, :, :cols], self.values[:rows, :, :cols]

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.owner.view_cols, 0

    def get_seq_length(self) -> int:
        return self.owner.t

    def get_max_length(self) -> int:
        return self.owner.columns


class SlotCache(Cache):
    def __init__(self, num_layers: int, kv_heads: int, head_dim: int, dtype, device,
                 slots: int, columns: int, growable: bool):
        super().__init__(layers=[SlotLayer(self) for _ in range(num_layers)])
        self.kv_heads, self.head_dim, self.dtype, self.device = kv_heads, head_dim, dtype, device
        self.growable = growable
        self.slots, self.columns = 0, 0
        self.t = 0  # next column to write
        self.view_cols = 0  # columns a decode step attends to (set per step)
        self.col = torch.zeros(1, dtype=torch.long, device=device)
        self.mask = torch.zeros(0, 0, dtype=torch.bool, device=device)
        self.allocate(slots, columns)

    # -- storage -------------------------------------------------------------------------------
    def allocate(self, slots: int, columns: int) -> None:
        """(Re)allocate to at least `slots` × `columns`, keeping what is stored."""
        if slots <= self.slots and columns <= self.columns:
            return
        if self.slots and not self.growable:
            raise RuntimeError("fixed slot cache cannot grow")
        slots, columns = max(slots, self.slots), max(columns, self.columns)
        shape = (slots, self.kv_heads, columns, self.head_dim)
        for layer in self.layers:
            keys = torch.zeros(shape, dtype=self.dtype, device=self.device)
            values = torch.zeros(shape, dtype=self.dtype, device=self.device)
            if layer.is_initialized:
                keys[:self.slots, :, :self.columns] = layer.keys
                values[:self.slots, :, :self.columns] = layer.values
            layer.keys, layer.values, layer.is_initialized = keys, values, True
            if not self.growable:
                torch._dynamo.mark_static_address(keys)
                torch._dynamo.mark_static_address(values)
        mask = torch.zeros(slots, columns, dtype=torch.bool, device=self.device)
        mask[:self.slots, :self.columns] = self.mask
        self.mask = mask
        self.slots, self.columns = slots, columns

    def nbytes(self) -> int:
        return sum(layer.keys.numel() * layer.keys.element_size() * 2 for layer in self.layers)

    # -- rows ----------------------------------------------------------------------------------
    def place(self, row: int, prefill_layers, start: int) -> None:
        """Copy a prefilled prompt (per layer keys/values `[1, H, p, D]`) into `row` at `start`."""
        length = prefill_layers[0][0].shape[2]
        for layer, (keys, values) in zip(self.layers, prefill_layers):
            layer.keys[row, :, start:start + length] = keys[0]
            layer.values[row, :, start:start + length] = values[0]
        self.mask[row] = False
        self.mask[row, start:start + length] = True

    def move_row(self, src: int, dst: int) -> None:
        """Move row `src` into `dst` (to keep running rows packed)."""
        upto = self.t
        for layer in self.layers:
            layer.keys[dst, :, :upto] = layer.keys[src, :, :upto]
            layer.values[dst, :, :upto] = layer.values[src, :, :upto]
        self.mask[dst] = self.mask[src]

    def shift_left(self, delta: int) -> None:
        """Drop the first `delta` columns of the timeline (free for every running row)."""
        if delta <= 0:
            return
        keep = self.t - delta
        for layer in self.layers:
            layer.keys[:, :, :keep] = layer.keys[:, :, delta:self.t].clone()
            layer.values[:, :, :keep] = layer.values[:, :, delta:self.t].clone()
        self.mask[:, :keep] = self.mask[:, delta:self.t].clone()
        self.mask[:, keep:] = False
        self.t = keep

    # -- one decode step -----------------------------------------------------------------------
    def begin_step(self, cols: int) -> torch.Tensor:
        """Mark column `t` as written by every row; returns the 4D mask for `cols` columns."""
        self.mask[:, self.t] = True
        self.col.fill_(self.t)
        self.view_cols = cols
        return self.mask[:, None, None, :cols]

    def end_step(self) -> None:
        self.t += 1
