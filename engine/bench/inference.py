"""Inference benchmark: ftlab's HF engine against plain `transformers.generate`.

Greedy decoding of random prompts, always `--new-tokens` tokens (EOS ignored), reported as new
tokens per second, at each concurrency level: plain `generate` with the prompts batched in one
call, and the engine with that many requests submitted at once (continuous batching), with
time to first token (p50/p99). Each measurement is preceded by the same run as a warm-up (CUDA
graphs are captured then).

    # CPU, the embedded model (docs/bench/inference.md)
    python -m ftlab.engine.bench.inference --model smollm2-135m-instruct --prompt-len 128 --new-tokens 64
    # H200, random Llama-2-7B-shaped weights built on the device
    python -m ftlab.engine.bench.inference --shape llama2-7b --tokenizer DIR --prompt-len 512 --new-tokens 256

--json FILE writes the figures as JSON too.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import threading
import time


def _load(args):
    import torch
    from ftlab.engine.infer.loader import pick_device, pick_dtype
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = pick_device(args.device)
    dtype = pick_dtype(args.dtype, device)
    if args.shape:
        from ftlab.engine.model.synthetic import make_config

        if not args.tokenizer:
            from ftlab.engine.model.resolve import resolve_model

            args.tokenizer = str(resolve_model("smollm2-135m-instruct"))
        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
        config = make_config(args.shape, tokenizer)
        torch.manual_seed(0)
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa")
        name = f"{args.shape} (random weights)"
    else:
        from ftlab.engine.infer.loader import load
        from ftlab.engine.infer.source import resolve_source

        loaded = load(resolve_source(args.model), device=args.device, dtype=args.dtype)
        model, tokenizer = loaded.model, loaded.tokenizer
        name = args.model
    model.eval()
    return model, tokenizer, device, dtype, name


def _prompts(count: int, length: int, vocab: int, seed: int = 0) -> list[list[int]]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randint(100, vocab - 100, (count, length), generator=generator).tolist()


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_generate(model, device, prompts: list[list[int]], new_tokens: int) -> dict:
    """Plain `model.generate`, all prompts in one call (equal lengths: no padding)."""
    import torch

    ids = torch.tensor(prompts, device=device)
    kwargs = {"attention_mask": torch.ones_like(ids), "max_new_tokens": new_tokens, "min_new_tokens": new_tokens,
              "do_sample": False, "pad_token_id": model.config.pad_token_id}
    with torch.inference_mode():
        model.generate(ids, **kwargs)  # warm-up
        _sync(device)
        start = time.perf_counter()
        out = model.generate(ids, **kwargs)
        _sync(device)
        elapsed = time.perf_counter() - start
    produced = (out.shape[1] - ids.shape[1]) * out.shape[0]
    return {"tokens_per_s": produced / elapsed, "seconds": elapsed, "tokens": produced}


def _engine_run(engine, prompts, new_tokens: int) -> dict:
    from ftlab.engine.infer.params import SamplingParams

    params = SamplingParams(max_tokens=new_tokens, ignore_eos=True)
    first: dict[int, float] = {}
    tokens: dict[int, int] = {}
    done = threading.Semaphore(0)
    start = time.perf_counter()

    def handler(i):
        def on_event(event):
            first.setdefault(i, time.perf_counter() - start)
            tokens[i] = event.completion_tokens
            if event.finish_reason:
                done.release()
        return on_event

    for i, prompt in enumerate(prompts):
        engine.submit(prompt, params, handler(i))
    for _ in prompts:
        done.acquire()
    elapsed = time.perf_counter() - start
    ttft = sorted(first.values())
    produced = sum(tokens.values())
    return {"tokens_per_s": produced / elapsed, "seconds": elapsed, "tokens": produced,
            "ttft_p50_ms": 1000 * statistics.median(ttft),
            "ttft_p99_ms": 1000 * ttft[min(len(ttft) - 1, round(0.99 * (len(ttft) - 1)))]}


def bench_engine(engine, prompts, new_tokens: int) -> dict:
    _engine_run(engine, prompts, new_tokens)  # warm-up (graph capture)
    return _engine_run(engine, prompts, new_tokens)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct", help="model to load (ignored with --shape)")
    parser.add_argument("--shape", help="random-weight shape from ftlab.engine.model.synthetic (e.g. llama2-7b)")
    parser.add_argument("--tokenizer", help="tokenizer folder for --shape (default: the embedded model's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--prompt-len", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--concurrency", default="1,16", help="comma-separated request counts")
    parser.add_argument("--max-len", type=int, help="engine context (default: prompt + new tokens, rounded up)")
    parser.add_argument("--no-cuda-graphs", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile the engine's decode step")
    parser.add_argument("--skip-generate", action="store_true", help="only the engine")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)

    import torch
    import transformers
    from ftlab.engine.infer.hf_engine import COLUMN_BUCKET, HFEngine

    model, tokenizer, device, dtype, name = _load(args)
    levels = [int(c) for c in args.concurrency.split(",")]
    need = args.prompt_len + args.new_tokens
    max_len = args.max_len or -(-need // COLUMN_BUCKET) * COLUMN_BUCKET
    engine = HFEngine(model, tokenizer, name, max_batch=max(levels), max_len=max_len,
                      cuda_graphs=not args.no_cuda_graphs, compile=args.compile, log=print)
    setup = {"model": name, "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor()
             or "cpu", "threads": torch.get_num_threads(), "dtype": str(dtype).replace("torch.", ""),
             "torch": torch.__version__, "transformers": transformers.__version__,
             "prompt_len": args.prompt_len, "new_tokens": args.new_tokens, "engine": engine.info(),
             "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(setup))
    results = []
    try:
        for level in levels:
            prompts = _prompts(level, args.prompt_len, len(tokenizer), seed=level)
            row = {"concurrency": level, "engine": bench_engine(engine, prompts, args.new_tokens)}
            if not args.skip_generate:
                row["generate"] = bench_generate(model, device, prompts, args.new_tokens)
            results.append(row)
            print(json.dumps(row), flush=True)
    finally:
        engine.shutdown()
    print("\n| requests | plain generate tok/s | ftlab engine tok/s | TTFT p50 ms | TTFT p99 ms |")
    print("|---|---|---|---|---|")
    for row in results:
        gen = row.get("generate", {}).get("tokens_per_s")
        eng = row["engine"]
        print(f"| {row['concurrency']} | {gen:,.1f} | " if gen else f"| {row['concurrency']} | – | ", end="")
        print(f"{eng['tokens_per_s']:,.1f} | {eng['ttft_p50_ms']:,.0f} | {eng['ttft_p99_ms']:,.0f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"setup": setup, "results": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
