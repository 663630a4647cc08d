"""The HF engine against plain `model.generate`: continuous batching must not change greedy answers."""

from __future__ import annotations

import threading

import pytest
import torch
from ftlab.engine.infer.hf_engine import HFEngine, wait_all
from ftlab.engine.infer.params import SamplingParams


@pytest.fixture(scope="module")
def tiny(tiny_model_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tiny_model_factory("tiny-llama")
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="sdpa").eval()
    return model, AutoTokenizer.from_pretrained(folder)


def _reference(model, prompt, max_new):
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=max_new, do_sample=False,
                             pad_token_id=model.config.pad_token_id)
    return out[0, len(prompt):].tolist()


@pytest.mark.parametrize("slots,prefill", [(2, 1), (3, 3)])
def test_joined_mid_flight_and_shifted_rows_match_generate(tiny, slots, prefill):
    model, tokenizer = tiny
    # few slots and a 64-column timeline: later requests join while others run, and the timeline
    # has to be compacted for them to fit; prefill=3 prefills prompts of different lengths together
    engine = HFEngine(model, tokenizer, "tiny", max_batch=slots, max_len=64, prefill_batch=prefill)
    try:
        prompts = [list(range(100 + 7 * i, 100 + 7 * i + 9 + 3 * i)) for i in range(6)]
        lengths = [20, 8, 30, 12, 25, 5]
        results: dict[int, list[int]] = {}

        def collect(i):
            text = wait_all(engine, prompts[i], SamplingParams(max_tokens=lengths[i]))[0]
            results[i] = text

        threads = [threading.Thread(target=collect, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        for i in range(6):
            expected = tokenizer.decode(_reference(model, prompts[i], lengths[i]), skip_special_tokens=True)
            assert results[i]["text"] == expected, f"request {i}"
            assert results[i]["finish_reason"] in ("length", "stop")
        if prefill == 1:
            assert engine.shifts > 0, "the test should exercise timeline compaction"
        else:
            assert engine.largest_prefill > 1, "the test should prefill prompts together"
    finally:
        engine.shutdown()


def test_n_choices_and_seeds(tiny):
    model, tokenizer = tiny
    engine = HFEngine(model, tokenizer, "tiny", max_batch=8)
    try:
        prompt = list(range(200, 220))
        sampled = SamplingParams(max_tokens=12, temperature=1.0, top_p=0.95, n=3, seed=7)
        first = [c["text"] for c in wait_all(engine, prompt, sampled)]
        again = [c["text"] for c in wait_all(engine, prompt, sampled)]
        assert first == again  # same seed, same choices
        assert len(set(first)) > 1  # choices are sampled independently
        greedy = wait_all(engine, prompt, SamplingParams(max_tokens=12, n=2))
        reference = tokenizer.decode(_reference(model, prompt, 12), skip_special_tokens=True)
        assert [c["text"] for c in greedy] == [reference, reference]
        assert all(c["tokens"] == 12 for c in greedy)
    finally:
        engine.shutdown()


def test_prompt_longer_than_context_is_refused(tiny):
    from ftlab.engine.infer.params import EngineError

    model, tokenizer = tiny
    engine = HFEngine(model, tokenizer, "tiny", max_batch=2, max_len=32)
    try:
        with pytest.raises(EngineError, match="context is 32 tokens"):
            engine.submit(list(range(40)), SamplingParams(), lambda e: None)
    finally:
        engine.shutdown()


def test_run_dir_with_lora_adapter_answers_like_peft(tiny_model_factory, tmp_path):
    """A run dir (config.yaml + final/ adapter) is served with its adapter merged: same greedy
    tokens as the unmerged peft model, and different from the base model's."""
    from ftlab.engine.infer.factory import build_engine
    from ftlab.engine.infer.source import resolve_source
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base_dir = tiny_model_factory("tiny-llama")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(f"stage: sft\nmodel:\n  name_or_path: {base_dir}\n")
    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
    peft_model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear",
                                                 init_lora_weights=False)).eval()
    peft_model.save_pretrained(run / "final")
    prompt = list(range(300, 316))
    with torch.inference_mode():
        tuned = peft_model.generate(torch.tensor([prompt]), max_new_tokens=10, min_new_tokens=10, do_sample=False,
                                    pad_token_id=0)[0, 16:].tolist()
        with peft_model.disable_adapter():
            plain = peft_model.generate(torch.tensor([prompt]), max_new_tokens=10, min_new_tokens=10,
                                        do_sample=False, pad_token_id=0)[0, 16:].tolist()
    assert tuned != plain
    source = resolve_source(str(run), log=lambda *_: None)
    engine = build_engine(source, "hf", device="cpu", max_batch=2)
    try:
        answer = wait_all(engine, prompt, SamplingParams(max_tokens=10, ignore_eos=True))[0]["text"]
        assert answer == engine.tokenizer.decode(tuned, skip_special_tokens=True)
        assert engine.model_id == "run"
    finally:
        engine.shutdown()
