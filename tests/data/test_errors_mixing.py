"""Unusable rows are reported with file, row and reason, counted per reason; mixing strategies and
their probabilities; streaming gives the same rows as the cached path."""

from __future__ import annotations

import json

import pytest

from ftlab.engine.config.schema import DataConfig
from ftlab.engine.data import prepare_dataset
from ftlab.errors import UserError

QUIET = {"log": lambda *_: None}
SHAREGPT = {"formatting": "sharegpt", "columns": {"messages": "conversations"}}


def _conv(*pairs):
    return {"conversations": [{"from": f, "value": v} for f, v in pairs]}


BAD_ROWS = [
    ({}, {"instruction": "no output column"}, "missing column 'output'"),
    ({}, {"instruction": "q", "output": "  "}, "empty response"),
    (SHAREGPT, _conv(("human", "a"), ("human", "b"), ("gpt", "c")), "two user turns in a row"),
    (SHAREGPT, _conv(("human", "a"), ("robot", "b")), "unknown role tag"),
    # the prompt is so long that LlamaFactory's budget split leaves the reply 0 tokens
    ({}, {"instruction": "long " * 3000, "output": "fine " * 40}, "nothing left to train after cutoff"),
]


@pytest.mark.parametrize("entry, row, reason", BAD_ROWS, ids=[r for _, _, r in BAD_ROWS])
def test_each_reason_names_file_row_and_reason(entry, row, reason, tokenizer, data_cache, make_dataset):
    good = _conv(("human", "hi"), ("gpt", "hello")) if entry else {"instruction": "hi", "output": "hello"}
    folder = make_dataset({"d": (entry, [good, row, good])})
    logs = []
    data = DataConfig(dataset=["d"], dataset_dir=str(folder), cutoff_len=64)
    prepared = prepare_dataset(data, "sft", tokenizer, log=logs.append)
    assert prepared.stats["kept"] == 2
    assert prepared.stats["dropped_by_reason"] == {reason: 1}
    assert f"{folder / 'd.json'} row 2" in prepared.stats["dropped_examples"][reason][0]
    assert any(reason in line and "d.json row 2" in line for line in logs)


def test_nothing_valid_lists_counts(tokenizer, data_cache, make_dataset):
    rows = [{"instruction": "q"}] * 3 + [{"instruction": "q", "output": ""}] * 2
    folder = make_dataset({"d": ({}, rows)})
    with pytest.raises(UserError) as err:
        prepare_dataset(DataConfig(dataset=["d"], dataset_dir=str(folder)), "sft", tokenizer, **QUIET)
    message = str(err.value)
    assert "no usable samples among 5 rows" in message
    assert "3 × missing column 'output'" in message and "2 × empty response" in message
    assert "d.json row 1" in message


def test_registry_problems_reported_together(tokenizer, data_cache, tmp_path):
    (tmp_path / "dataset_info.json").write_text(json.dumps({
        "a": {"file_name": "missing.json"}, "b": {"hf_hub_url": "org/x"}, "c": {"file_name": "x", "columns": {"bad": 1}}}))
    with pytest.raises(UserError) as err:
        prepare_dataset(DataConfig(dataset=["a", "b", "c", "zzz"], dataset_dir=str(tmp_path)), "sft", tokenizer)
    message = str(err.value)
    for needle in ("a.file_name", "missing.json: no such file", "hub datasets cannot be fetched",
                   "c.columns.bad", "zzz: no such dataset"):
        assert needle in message


def test_malformed_json_names_row(tokenizer, data_cache, tmp_path):
    (tmp_path / "d.json").write_text('[{"instruction": "a", "output": "b"},\n{"instruction": "c", "output": }]')
    (tmp_path / "dataset_info.json").write_text(json.dumps({"d": {"file_name": "d.json"}}))
    with pytest.raises(UserError, match=r"d.json: row 2: malformed JSON"):
        prepare_dataset(DataConfig(dataset=["d"], dataset_dir=str(tmp_path)), "sft", tokenizer, **QUIET)


def _letters(tokenizer, prepared):
    out = []
    for row in prepared.train:
        trained = [t for t, lab in zip(row["input_ids"], row["labels"]) if lab != -100]
        out.append(tokenizer.decode(trained[:1]))
    return out


def _mix_folder(make_dataset, n_a, n_b):
    return make_dataset({
        "a": ({}, [{"instruction": f"q{i}", "output": "A"} for i in range(n_a)]),
        "b": ({}, [{"instruction": f"q{i}", "output": "B"} for i in range(n_b)])})


def test_mix_concat_and_max_samples(tokenizer, data_cache, make_dataset):
    folder = _mix_folder(make_dataset, 30, 30)
    data = DataConfig(dataset=["a", "b"], dataset_dir=str(folder), max_samples=10)
    assert _letters(tokenizer, prepare_dataset(data, "sft", tokenizer, **QUIET)) == ["A"] * 10 + ["B"] * 10


def test_interleave_under_follows_probabilities(tokenizer, data_cache, make_dataset):
    folder = _mix_folder(make_dataset, 160, 1000)
    data = DataConfig(dataset=["a", "b"], dataset_dir=str(folder), mix_strategy="interleave_under",
                      interleave_probs=[0.8, 0.2])
    letters = _letters(tokenizer, prepare_dataset(data, "sft", tokenizer, **QUIET))
    assert letters.count("A") == 160                   # stops when a runs out
    assert 0.7 < letters.count("A") / len(letters) < 0.9


def test_interleave_over_oversamples(tokenizer, data_cache, make_dataset):
    folder = _mix_folder(make_dataset, 100, 20)
    data = DataConfig(dataset=["a", "b"], dataset_dir=str(folder), mix_strategy="interleave_over")
    letters = _letters(tokenizer, prepare_dataset(data, "sft", tokenizer, **QUIET))
    assert letters.count("A") >= 100 and letters.count("B") > 20    # b is repeated until a is used up
    assert 0.35 < letters.count("A") / len(letters) < 0.65


@pytest.mark.parametrize("packing", [False, True])
def test_streaming_matches_cached(packing, tokenizer, data_cache, repo):
    from datasets import IterableDataset

    base = dict(dataset=["alpaca_demo", "identity"], dataset_dir=str(repo / "profiles/data"), cutoff_len=128,
                packing=packing)
    cached = prepare_dataset(DataConfig(**base), "sft", tokenizer, **QUIET)
    streamed = prepare_dataset(DataConfig(**base, streaming=True, val_size=4, buffer_size=1), "sft", tokenizer,
                               **QUIET)
    assert isinstance(streamed.train, IterableDataset) and len(streamed.eval) == 4
    rows = list(streamed.train)
    if packing:
        tokens = sorted(t for r in rows for t in r["input_ids"])
        assert len(tokens) < cached.stats["tokens"]                     # 4 samples held out
        assert all(len(r["input_ids"]) <= 128 for r in rows)
    else:
        expected = [list(r) for r in cached.train["input_ids"]]
        assert [r["input_ids"] for r in rows] == expected[4:]
        assert [list(r) for r in streamed.eval["input_ids"]] == expected[:4]


def test_num_samples_draws_with_repetition(tokenizer, data_cache, make_dataset):
    folder = make_dataset({"d": ({"num_samples": 7}, [{"instruction": f"q{i}", "output": "A"} for i in range(3)])})
    prepared = prepare_dataset(DataConfig(dataset=["d"], dataset_dir=str(folder)), "sft", tokenizer, **QUIET)
    assert prepared.stats["kept"] == 7


def test_llamafactory_data_keys(tmp_path):
    from ftlab.engine.config import load_profile

    path = tmp_path / "lf.yaml"
    path.write_text("model_name_or_path: smollm2-135m-instruct\nstage: sft\ndo_train: true\nfinetuning_type: lora\n"
                    "dataset: a,b\ntemplate: qwen\ncutoff_len: 512\nmax_samples: 100\nval_size: 0.1\n"
                    "streaming: false\nbuffer_size: 128\nmix_strategy: interleave_under\ninterleave_probs: 0.7,0.3\n"
                    "packing: false\nneat_packing: true\ntrain_on_prompt: false\nmask_history: true\n"
                    "tokenized_path: /tmp/tok\npreprocessing_num_workers: 2\noverwrite_cache: true\n"
                    "default_system: Be brief.\nenable_thinking: false\noutput_dir: out/x\n")
    data = load_profile(str(path), []).profile.data
    assert data.dataset == ["a", "b"] and data.template == "qwen" and data.cutoff_len == 512
    assert data.max_samples == 100 and data.val_size == 0.1 and data.buffer_size == 128
    assert data.mix_strategy == "interleave_under" and data.interleave_probs == [0.7, 0.3]
    assert data.packing is True and data.mask_history is True and data.tokenized_path == "/tmp/tok"
    assert data.overwrite_cache is True and data.default_system == "Be brief." and data.enable_thinking is False
