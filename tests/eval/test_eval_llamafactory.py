"""LlamaFactory's eval and predict keys translate into the eval / generate sections, one test per key."""

from __future__ import annotations

import pytest

from ftlab.engine.config.loader import load_profile_data
from ftlab.errors import ProblemsError

BASE = {"model_name_or_path": "smollm2-135m-instruct"}


def translate(**keys):
    return load_profile_data({**BASE, **keys}, "lf.yaml").profile


@pytest.mark.parametrize("key, value, path, expected", [
    ("task_dir", "benchmarks", "eval.task_dir", "benchmarks"),
    ("n_shot", 3, "eval.n_shot", 3),
    ("lang", "zh", "eval.lang", "zh"),
    ("batch_size", 16, "eval.batch_size", 16),
    ("save_dir", "saves/eval", "output.dir", "saves/eval"),
    ("per_device_eval_batch_size", 2, "generate.batch_size", 2),
    ("max_new_tokens", 64, "generate.max_new_tokens", 64),
    ("do_sample", True, "generate.do_sample", True),
    ("temperature", 0.5, "generate.temperature", 0.5),
    ("top_p", 0.9, "generate.top_p", 0.9),
    ("top_k", 20, "generate.top_k", 20),
    ("num_beams", 4, "generate.num_beams", 4),
    ("repetition_penalty", 1.1, "generate.repetition_penalty", 1.1),
    ("length_penalty", 0.8, "generate.length_penalty", 0.8),
    ("skip_special_tokens", False, "generate.skip_special_tokens", False),
    ("eval_dataset", "identity,alpaca_demo", "data.dataset", ["identity", "alpaca_demo"]),
])
def test_key_translates(key, value, path, expected):
    node = translate(**{key: value})
    for part in path.split("."):
        node = getattr(node, part)
    assert node == expected


def test_task_makes_an_eval_run_wherever_stage_is():
    profile = translate(stage="sft", task="ceval_validation", finetuning_type="lora", template="fewshot")
    assert profile.stage == "eval" and profile.eval.task == "ceval_validation"
    assert profile.data.template == "fewshot"  # as LlamaFactory's eval example writes it
    assert translate(task="mmlu_test").stage == "eval"  # LlamaFactory's eval configs have no stage


def test_do_predict_makes_a_predict_run_and_needs_generation():
    profile = translate(do_predict=True, stage="sft", predict_with_generate=True, eval_dataset="identity")
    assert profile.stage == "predict" and profile.data.dataset == ["identity"]
    assert translate(do_predict=False, stage="sft").stage == "sft"
    with pytest.raises(ProblemsError, match="predict_with_generate: ftlab's predict stage always generates"):
        translate(do_predict=True, predict_with_generate=False)


def test_eval_dataset_beside_dataset_is_refused():
    with pytest.raises(ProblemsError, match="eval_dataset: ftlab has no separate evaluation dataset"):
        translate(dataset="identity", eval_dataset="alpaca_demo")
