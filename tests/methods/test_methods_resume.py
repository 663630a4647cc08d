"""Checkpoints for real: save_steps + save_total_limit, and a run resumed from a checkpoint (with
LoRA+'s own optimizer) continues exactly like the uninterrupted run."""

from __future__ import annotations

import pytest
import torch
from ftlab.engine.config import Profile
from ftlab.engine.model.loader import load_model
from ftlab.engine.train.methods import apply_method, make_optimizer, training_overrides
from ftlab.engine.train.runner import _resume_arg, training_arguments
from transformers import Trainer


def run(folder, run_dir, data, steps, resume=None, limit=None):
    torch.manual_seed(0)
    profile = Profile(method={"type": "lora", "lora": {"rank": 4, "loraplus_lr_ratio": 4}},
                      train={"batch_size": 2, "max_steps": steps, "save_steps": 2, "save_total_limit": limit,
                             "learning_rate": 1e-2, "lr_scheduler": "linear", "logging_steps": 1})
    model = apply_method(load_model(profile.model, folder), profile.method)
    args = training_arguments(profile, run_dir, training_overrides(profile.method, profile.model, model))
    trainer = Trainer(model=model, args=args, train_dataset=data,
                      optimizers=(make_optimizer(model, profile.method, args), None))
    trainer.train(resume_from_checkpoint=_resume_arg(resume, run_dir))
    losses = {r["step"]: r["loss"] for r in trainer.state.log_history if "loss" in r}
    lora = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    return losses, lora


def test_resume_continues_the_same_run(tiny_llama, tmp_path, random_data):
    import shutil

    data = random_data(rows=16)
    straight, straight_lora = run(tiny_llama, tmp_path / "a", data, 4)
    assert sorted(p.name for p in (tmp_path / "a").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]

    (tmp_path / "b").mkdir()
    shutil.copytree(tmp_path / "a" / "checkpoint-2", tmp_path / "b" / "checkpoint-2")
    (tmp_path / "b" / "checkpoint-3").mkdir()  # a save cut off before trainer_state.json: skipped
    assert _resume_arg("last", tmp_path / "b").endswith("checkpoint-2")
    resumed, resumed_lora = run(tiny_llama, tmp_path / "b", data, 4, resume="last", limit=1)
    for step in (3, 4):  # same data order, optimizer (LoRA+ groups) and schedule as the straight run
        assert resumed[step] == pytest.approx(straight[step], rel=1e-5)
    for name, value in straight_lora.items():
        assert torch.allclose(resumed_lora[name], value, atol=1e-6), name
    assert not (tmp_path / "b" / "checkpoint-2").exists() and (tmp_path / "b" / "checkpoint-4").is_dir()
