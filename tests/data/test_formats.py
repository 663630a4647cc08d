"""Each data format for each stage kind: alpaca, sharegpt, OpenAI messages, plain text (txt, csv,
parquet, jsonl) → pt, sft, pairwise (rm/dpo), kto, unsupervised (predict); and the collators."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ftlab.engine.config.schema import DataConfig
from ftlab.engine.data import make_collator, prepare_dataset

QUIET = {"log": lambda *_: None}


def _trained(tokenizer, ids, labels):
    return tokenizer.decode([i for i, lab in zip(ids, labels) if lab != -100])


def _prepare(folder, stage, tokenizer, **kw):
    data = DataConfig(dataset=kw.pop("dataset", ["d"]), dataset_dir=str(folder), **kw)
    return prepare_dataset(data, stage, tokenizer, **QUIET)


def test_alpaca_history_system_sft(tokenizer, data_cache, make_dataset):
    rows = [{"instruction": "Add", "input": "2 and 2", "output": "4", "system": "Math bot.",
             "history": [["Hi", "Hello"]]}]
    entry = {"columns": {"prompt": "instruction", "query": "input", "response": "output",
                         "system": "system", "history": "history"}}
    prepared = _prepare(make_dataset({"d": (entry, rows)}), "sft", tokenizer)
    row = prepared.train[0]
    expected = tokenizer.apply_chat_template(
        [{"role": "system", "content": "Math bot."}, {"role": "user", "content": "Hi"},
         {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Add\n2 and 2"},
         {"role": "assistant", "content": "4"}], tokenize=True, return_dict=False)
    assert list(row["input_ids"]) == list(expected)
    assert _trained(tokenizer, row["input_ids"], row["labels"]) == "Hello<|im_end|>4<|im_end|>"


@pytest.mark.parametrize("options, trained", [
    ({"mask_history": True}, "Second<|im_end|>"),
    ({"train_on_prompt": True}, None),
])
def test_sft_options(options, trained, tokenizer, data_cache, make_dataset):
    rows = [{"messages": [{"role": "user", "content": "One"}, {"role": "assistant", "content": "First"},
                          {"role": "user", "content": "Two"}, {"role": "assistant", "content": "Second"}]}]
    entry = {"formatting": "sharegpt", "columns": {"messages": "messages"}}   # OpenAI messages, detected
    row = _prepare(make_dataset({"d": (entry, rows)}), "sft", tokenizer, **options).train[0]
    text = _trained(tokenizer, row["input_ids"], row["labels"])
    if trained is None:
        assert text.startswith("<|im_start|>system") and "One" in text and "Second" in text
    else:
        assert text == trained


def test_openai_format_with_tool_calls(tokenizer, data_cache, make_dataset):
    rows = [{"messages": [
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"type": "function", "function": {"name": "w", "arguments": "{\"c\": 1}"}}]},
        {"role": "tool", "content": "sunny"},
        {"role": "assistant", "content": "Sunny."}]}]
    entry = {"formatting": "openai", "columns": {"messages": "messages"}}
    row = _prepare(make_dataset({"d": (entry, rows)}), "sft", tokenizer, template="qwen").train[0]
    text = tokenizer.decode(row["input_ids"])
    assert "<tool_call>\n{\"name\": \"w\", \"arguments\": {\"c\": 1}}\n</tool_call>" in text
    assert "<tool_response>\nsunny\n</tool_response>" in text
    assert _trained(tokenizer, row["input_ids"], row["labels"]).endswith("Sunny.<|im_end|>")


@pytest.mark.parametrize("kind", ["txt", "jsonl", "csv", "parquet"])
def test_pt_plain_text_files(kind, tokenizer, data_cache, tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    docs = [f"Document number {i} talks about topic {i * 7}." for i in range(40)]
    name = f"docs.{kind}"
    if kind == "txt":
        (folder / name).write_text("\n".join(docs) + "\n")
    elif kind == "jsonl":
        (folder / name).write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    elif kind == "csv":
        (folder / name).write_text("text\n" + "".join(f'"{d}"\n' for d in docs))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"text": docs}), folder / name)
    (folder / "dataset_info.json").write_text(json.dumps({"d": {"file_name": name, "columns": {"prompt": "text"}}}))
    prepared = _prepare(folder, "pt", tokenizer, cutoff_len=32)
    total = sum(len(tokenizer(d, add_special_tokens=False)["input_ids"]) + 1 for d in docs)
    lengths = [len(r) for r in prepared.train["input_ids"]]
    assert sum(lengths) == total and lengths[:-1] == [32] * (len(lengths) - 1)
    flat = [t for r in prepared.train["input_ids"] for t in r]
    assert flat.count(tokenizer.eos_token_id) == len(docs)
    assert prepared.train["labels"] == prepared.train["input_ids"]


def test_pairwise_alpaca_and_sharegpt_with_collator_order(tokenizer, data_cache, make_dataset):
    alpaca = [{"instruction": "Say hi", "chosen": "Hi!", "rejected": "No."}] * 2
    sharegpt = [{"conversations": [{"from": "human", "value": "Pick"}],
                 "chosen": {"from": "gpt", "value": "Good answer"},
                 "rejected": {"from": "gpt", "value": "Bad"}}]
    folder = make_dataset({
        "a": ({"ranking": True, "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"}},
              alpaca),
        "s": ({"ranking": True, "formatting": "sharegpt",
               "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}}, sharegpt)})
    prepared = _prepare(folder, "dpo", tokenizer, dataset=["a", "s"])
    train = prepared.train
    assert train.column_names == ["chosen_input_ids", "chosen_labels", "rejected_input_ids", "rejected_labels"]
    assert len(train) == 3
    rows = [train[i] for i in range(3)]
    batch = make_collator("dpo", tokenizer)(rows)
    assert batch["input_ids"].shape[0] == 6 and batch["input_ids"].shape[1] % 8 == 0
    for i, row in enumerate(rows):  # n chosen first, then n rejected
        n = len(row["chosen_input_ids"])
        assert batch["input_ids"][i, :n].tolist() == list(row["chosen_input_ids"])
        m = len(row["rejected_input_ids"])
        assert batch["input_ids"][3 + i, :m].tolist() == list(row["rejected_input_ids"])
        assert (batch["labels"][i, n:] == -100).all()
    assert _trained(tokenizer, rows[2]["chosen_input_ids"], rows[2]["chosen_labels"]) == "Good answer<|im_end|>"
    assert _trained(tokenizer, rows[2]["rejected_input_ids"], rows[2]["rejected_labels"]) == "Bad<|im_end|>"


def test_kto_feedback(tokenizer, data_cache, make_dataset):
    rows = [{"conversations": [{"from": "human", "value": f"Q{i}"}, {"from": "gpt", "value": f"A{i}"}],
             "label": i % 2 == 0} for i in range(4)]
    entry = {"formatting": "sharegpt", "columns": {"messages": "conversations", "kto_tag": "label"}}
    prepared = _prepare(make_dataset({"d": (entry, rows)}), "kto", tokenizer)
    train = prepared.train
    assert train["kto_tag"] == [True, False, True, False]
    row = train[0]
    assert _trained(tokenizer, row["input_ids"], row["labels"]) == "A0<|im_end|>"
    assert "Q0" in tokenizer.decode(row["kl_input_ids"])
    assert _trained(tokenizer, row["kl_input_ids"], row["kl_labels"]) == "A3<|im_end|>"
    batch = make_collator("kto", tokenizer)([train[i] for i in range(4)])
    assert batch["kto_tags"].tolist() == [True, False, True, False]
    assert batch["kl_input_ids"].shape[0] == 4


def test_unsupervised_predict_left_padded(tokenizer, data_cache, repo):
    data = DataConfig(dataset=["alpaca_demo"], dataset_dir=str(repo / "profiles/data"), max_samples=4)
    prepared = prepare_dataset(data, "predict", tokenizer, **QUIET)
    row = prepared.train[0]
    assert tokenizer.decode(row["input_ids"]).endswith("<|im_start|>assistant\n")
    assert tokenizer.decode([t for t in row["labels"] if t != -100]).startswith("1. Eat a balanced diet")
    batch = make_collator("predict", tokenizer)([prepared.train[i] for i in range(4)])
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert (mask[:, -1] == 1).all() and ids.shape[1] % 8 == 0   # left padding
    assert (ids[mask == 0] == tokenizer.pad_token_id).all()


def test_truncation_splits_budget_like_llamafactory(tokenizer, data_cache, make_dataset):
    from ftlab.engine.data.encode import infer_seqlen

    assert infer_seqlen(100, 20, 64) == (44, 20)      # short target kept whole
    assert infer_seqlen(20, 100, 64) == (20, 44)      # short source kept whole
    assert infer_seqlen(100, 100, 64) == (32, 32)     # both cut in proportion
    long = " ".join(["word"] * 300)
    rows = [{"instruction": long, "output": long}]
    prepared = _prepare(make_dataset({"d": ({}, rows)}), "sft", tokenizer, cutoff_len=64)
    row = prepared.train[0]
    assert len(row["input_ids"]) == 64 and prepared.stats["truncated"] == 1
    # both sides longer than half: cut in proportion (the prompt has the system prompt too)
    assert 28 <= sum(1 for lab in row["labels"] if lab != -100) < 32


def test_cache_reused_and_keyed(tokenizer, data_cache, make_dataset):
    folder = make_dataset({"d": ({}, [{"instruction": "a", "output": "b"}])})
    first = _prepare(folder, "sft", tokenizer)
    logs = []
    data = DataConfig(dataset=["d"], dataset_dir=str(folder))
    again = prepare_dataset(data, "sft", tokenizer, log=logs.append)
    assert "from the cache" in logs[0] and again.train["input_ids"] == first.train["input_ids"]
    assert len(list(data_cache.iterdir())) == 1
    _prepare(folder, "sft", tokenizer, cutoff_len=512)   # other settings: another entry
    assert len(list(data_cache.iterdir())) == 2
    arrow = next(data_cache.iterdir()) / "train.arrow"
    assert arrow.exists()
    import pyarrow as pa

    with pa.memory_map(str(arrow)) as source:
        schema = pa.ipc.open_stream(source).schema
    assert str(schema.field("input_ids").type) == "list<item: uint16>"
    np.testing.assert_array_equal(first.train[0]["input_ids"], again.train[0]["input_ids"])


def test_turn_by_turn_tokenization_equals_whole_text(tokenizer, data_cache, make_dataset, monkeypatch):
    """The fast path (turns past the cutoff never tokenized) gives the same rows as tokenizing the
    whole conversation, including the truncated count."""
    import random

    from ftlab.engine.data import pipeline

    rng = random.Random(0)
    words = ["alpha", "beta", "gamma", "delta", "\n", " ", "x1", "über", "🙂"]
    def text():
        return " ".join(rng.choice(words) for _ in range(rng.randint(1, 60)))
    rows = [{"conversations": [{"from": f, "value": text()} for _ in range(rng.randint(1, 3))
                               for f in ("human", "gpt")]} for _ in range(60)]
    folder = make_dataset({"d": ({"formatting": "sharegpt"}, rows)})
    fast = _prepare(folder, "sft", tokenizer, cutoff_len=96, overwrite_cache=True)
    monkeypatch.setattr(pipeline._Encoder, "_lazy_prefixes", lambda self: None)
    whole = _prepare(folder, "sft", tokenizer, cutoff_len=96, overwrite_cache=True)
    assert fast.stats["truncated"] == whole.stats["truncated"] > 0
    assert fast.train["input_ids"] == whole.train["input_ids"]
    assert fast.train["labels"] == whole.train["labels"]
