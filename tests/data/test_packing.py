"""Packing: greedy bins within cutoff_len, position_ids restarting per sample, and the same loss
as the unpacked batch (no attention across packed samples) on a tiny random Llama."""

from __future__ import annotations

import numpy as np
import torch

from ftlab.engine.config.schema import DataConfig
from ftlab.engine.data import make_collator, prepare_dataset
from ftlab.engine.data.packing import greedy_knapsack, pack_rows


def test_greedy_knapsack_fills_bins():
    lengths = [700, 300, 1000, 20, 5, 1024]
    bins = greedy_knapsack(lengths, 1024)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 1024 for b in bins)
    assert len(bins) == 3


def test_packed_rows_restart_positions(tokenizer, data_cache, repo):
    data = DataConfig(dataset=["alpaca_demo"], dataset_dir=str(repo / "profiles/data"), cutoff_len=256,
                      packing=True)
    prepared = prepare_dataset(data, "sft", tokenizer, log=lambda *_: None)
    assert prepared.train.column_names == ["input_ids", "labels", "position_ids"]
    assert len(prepared.train) < prepared.stats["kept"]
    for row in prepared.train:
        pos = np.asarray(row["position_ids"])
        assert len(pos) <= 256 and pos[0] == 0
        starts = np.flatnonzero(pos == 0)
        # each packed sample starts with the template's first token and is trained somewhere
        for a, b in zip(starts, list(starts[1:]) + [len(pos)]):
            assert (np.diff(pos[a:b]) == 1).all()
            assert (np.asarray(row["labels"][a:b]) != -100).any()


def test_packed_loss_equals_unpacked(tiny_llama, tokenizer, data_cache, repo):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32, attn_implementation="sdpa")
    model.eval()
    data = DataConfig(dataset=["alpaca_demo"], dataset_dir=str(repo / "profiles/data"), cutoff_len=128)
    rows = [prepare_dataset(data, "sft", tokenizer, log=lambda *_: None).train[i] for i in range(6)]
    ids = [np.asarray(r["input_ids"]) for r in rows]
    labels = [np.asarray(r["labels"]) for r in rows]
    packed = [dict(input_ids=i, labels=lab, position_ids=p) for i, lab, p in pack_rows(ids, labels, 512)]
    assert len(packed) < len(rows)

    collate = make_collator("sft", tokenizer)
    plain_batch = collate(rows)
    packed_batch = collate(packed)
    assert "attention_mask" not in packed_batch and packed_batch["use_cache"] is False and packed_batch["input_ids"].shape[1] % 8 == 0
    with torch.no_grad():
        plain = model(**plain_batch).loss.item()
        together = model(**packed_batch).loss.item()
        # with a KV cache transformers ignores the packing (samples see each other): a different loss
        leaky = model(input_ids=packed_batch["input_ids"], labels=packed_batch["labels"],
                      position_ids=packed_batch["position_ids"], use_cache=True).loss.item()
    assert abs(plain - together) < 1e-4, (plain, together)
    assert abs(plain - leaky) > 1e-3
