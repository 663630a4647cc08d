"""Fixtures for the method tests: a Profile-driven Trainer on random tokens (the runner's own
training_arguments, method overrides and optimizer), and parameter snapshots."""

from __future__ import annotations

import pytest
import torch


def random_dataset(vocab: int = 1000, rows: int = 8, length: int = 32, seed: int = 0) -> list[dict]:
    gen = torch.Generator().manual_seed(seed)
    data = []
    for _ in range(rows):
        ids = torch.randint(3, vocab, (length,), generator=gen)
        data.append({"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()})
    return data


@pytest.fixture
def train_steps(tmp_path):
    """train_steps(model, profile, steps=3) → the Trainer after `steps` optimizer steps."""
    from ftlab.engine.train.methods import make_optimizer, training_overrides
    from ftlab.engine.train.runner import training_arguments
    from transformers import Trainer

    def run(model, profile, steps: int = 3, data=None):
        profile = profile.model_copy(deep=True)
        profile.train.max_steps = steps
        profile.train.batch_size = 2
        profile.train.learning_rate = 1e-2
        profile.train.lr_scheduler = "constant"
        profile.output.report_to = []
        args = training_arguments(profile, tmp_path / "run", training_overrides(profile.method, profile.model, model))
        trainer = Trainer(model=model, args=args, train_dataset=data or random_dataset(),
                          optimizers=(make_optimizer(model, profile.method, args), None))
        trainer.train()
        return trainer

    return run


@pytest.fixture
def random_data():
    """random_data(rows=8, length=32) → a list of {input_ids, attention_mask, labels} rows."""
    return random_dataset
