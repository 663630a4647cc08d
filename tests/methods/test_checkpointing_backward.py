"""With non-reentrant checkpointing, backward stops at the lowest trainable layer: freezing the
lower layers saves their backward (transformers' enable_input_require_grads would force it)."""

from __future__ import annotations

import torch

from ftlab.engine.config import MethodConfig, ModelConfig
from ftlab.engine.model.loader import load_model
from ftlab.engine.train.methods import apply_method


def backward_calls(model) -> dict[int, int]:
    calls = {i: 0 for i in range(len(model.model.layers))}
    for index, layer in enumerate(model.model.layers):
        layer.mlp.down_proj.register_full_backward_hook(lambda *_, i=index: calls.__setitem__(i, calls[i] + 1))
    ids = torch.randint(0, 1000, (2, 16))
    model(input_ids=ids, labels=ids).loss.backward()
    return calls


def test_freeze_with_checkpointing_skips_the_frozen_layers_backward(tiny_llama):
    model = load_model(ModelConfig(name_or_path=str(tiny_llama), gradient_checkpointing=True), tiny_llama)
    model = apply_method(model, MethodConfig(type="freeze", freeze={"trainable_layers": 1}))
    calls = backward_calls(model)
    assert calls[1] > 0 and calls[0] == 0, calls


def test_lora_with_checkpointing_still_reaches_every_layer(tiny_llama):
    model = load_model(ModelConfig(name_or_path=str(tiny_llama), gradient_checkpointing=True), tiny_llama)
    model = apply_method(model, MethodConfig(type="lora", lora={"rank": 4}))
    calls = backward_calls(model.base_model.model)
    assert all(count > 0 for count in calls.values()), calls
    grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n]  # A gets none while B is 0
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
