"""CUDA-graph decoding against plain `generate` (run on the GPU machine: pytest -m gpu tests/infer)."""

from __future__ import annotations

import os
import threading

import pytest

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cuda_tiny(tmp_path_factory):
    import torch
    from ftlab.engine.model.synthetic import make_config
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    folder = os.environ.get("FTLAB_TEST_TOKENIZER")
    if not folder:
        from ftlab.engine.model.resolve import resolve_model

        folder = resolve_model("smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(make_config("tiny-llama", tokenizer), dtype=torch.float32,
                                                 attn_implementation="sdpa").eval()
    return model, tokenizer


@pytest.mark.parametrize("compile", [False, True])
def test_graph_decoding_matches_generate(cuda_tiny, compile):
    import torch
    from ftlab.engine.infer.hf_engine import HFEngine, wait_all
    from ftlab.engine.infer.params import SamplingParams

    model, tokenizer = cuda_tiny
    engine = HFEngine(model, tokenizer, "tiny", max_batch=4, max_len=512, cuda_graphs=True, compile=compile)
    try:
        prompts = [list(range(100 + 11 * i, 130 + 17 * i)) for i in range(6)]
        lengths = [40, 12, 70, 25, 33, 9]
        results = {}

        def ask(i):
            results[i] = wait_all(engine, prompts[i], SamplingParams(max_tokens=lengths[i], ignore_eos=True))[0]

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        for i, prompt in enumerate(prompts):
            with torch.inference_mode():
                out = model.generate(torch.tensor([prompt], device="cuda"), max_new_tokens=lengths[i],
                                     min_new_tokens=lengths[i], do_sample=False, pad_token_id=0)
            expected = tokenizer.decode(out[0, len(prompt):], skip_special_tokens=True)
            assert results[i]["text"] == expected, f"request {i}"
        assert engine.cuda_graphs and len(engine._graphs) >= 2
    finally:
        engine.shutdown()
