"""sft with template auto: ids equal apply_chat_template, loss only on `{content}<|im_end|>`."""

from __future__ import annotations

from ftlab.engine.config.schema import DataConfig
from ftlab.engine.data import make_collator, prepare_dataset

CONV = [
    {"from": "human", "value": "What is 2+2?"},
    {"from": "gpt", "value": "It is 4."},
    {"from": "human", "value": "And 3+3?"},
    {"from": "gpt", "value": "Six.\n"},
]


def _messages(conv):
    role = {"human": "user", "gpt": "assistant"}
    return [{"role": role[m["from"]], "content": m["value"]} for m in conv]


def test_sharegpt_auto_matches_apply_chat_template(tokenizer, data_cache, make_dataset):
    folder = make_dataset({"chat": ({"formatting": "sharegpt"}, [{"conversations": CONV}])})
    prepared = prepare_dataset(DataConfig(dataset=["chat"], dataset_dir=str(folder)), "sft", tokenizer,
                               log=lambda *_: None)
    row = prepared.train[0]
    expected = tokenizer.apply_chat_template(_messages(CONV), tokenize=True, return_dict=False)
    assert list(row["input_ids"]) == list(expected)
    trained = [t for t, lab in zip(row["input_ids"], row["labels"]) if lab != -100]
    assert tokenizer.decode(trained) == "It is 4.<|im_end|>Six.\n<|im_end|>"
    assert all(lab in (-100, t) for t, lab in zip(row["input_ids"], row["labels"]))


def test_alpaca_demo_and_collator(tokenizer, data_cache, repo):
    data = DataConfig(dataset=["alpaca_demo", "identity"], dataset_dir=str(repo / "profiles/data"),
                      cutoff_len=64, val_size=0.1)
    prepared = prepare_dataset(data, "sft", tokenizer, log=lambda *_: None)
    assert prepared.eval is not None and len(prepared.eval) + len(prepared.train) == prepared.stats["kept"]
    assert max(len(r) for r in prepared.train["input_ids"]) <= 64
    batch = make_collator("sft", tokenizer)([prepared.train[i] for i in range(3)])
    assert batch["input_ids"].shape[1] % 8 == 0
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()
