"""Model resolution: embedded name → local folder → hub id, with one clear offline message."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ftlab.engine.model.registry import EMBEDDED, classify
from ftlab.engine.model.resolve import resolve_model
from ftlab.errors import UserError


def test_embedded_model_converts_to_a_loadable_bf16_folder(smollm2_dir):
    from transformers import AutoConfig, AutoTokenizer

    assert smollm2_dir == EMBEDDED["smollm2-135m-instruct"].folder
    assert (smollm2_dir / "model.safetensors").is_file()
    config = AutoConfig.from_pretrained(smollm2_dir)
    assert config.model_type == "llama" and config.num_hidden_layers == 30
    assert str(config.dtype).endswith("bfloat16")
    assert "quantization_config" not in config.to_dict()
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    assert tokenizer.chat_template and "<|im_start|>" in tokenizer.chat_template
    assert tokenizer.eos_token == "<|im_end|>"


def test_local_folder_and_errors(tiny_llama, tmp_path):
    assert resolve_model(str(tiny_llama)) == tiny_llama
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a Hugging Face model folder"):
        classify(str(tmp_path / "empty"))
    with pytest.raises(UserError, match="unknown model 'no-such-model'"):
        classify("no-such-model")


def test_hub_id_without_network_says_how_to_bring_the_model(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError) as info:
        resolve_model("some-org/some-model-that-is-not-cached")
    text = str(info.value)
    assert "cannot be reached" in text and "--local-dir" in text and "model.name_or_path" in text


def test_ftctl_models_lists_the_embedded_default(smollm2_dir):
    result = subprocess.run([sys.executable, "-m", "ftlab.cli", "models", "--json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    default = [r for r in rows if r["default"]]
    assert default and default[0]["name"] == "smollm2-135m-instruct" and default[0]["ready"] is True
