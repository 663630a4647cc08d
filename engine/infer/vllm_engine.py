"""The vLLM backend (`pip install 'ftlab[vllm]'`, Linux + CUDA): same interface as `HFEngine`.

vLLM runs its own continuous batching and paged KV cache; this module only adapts it: an asyncio
loop in a background thread drives `AsyncLLMEngine.generate`, cumulative outputs are turned into
text deltas, and a LoRA adapter is served through a `LoRARequest` on the unmerged base model.
Not exercised on the development machines (vLLM does not install there); `require_vllm` gives
the one clear message when it is missing.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import threading

from ftlab.errors import UserError

from .params import EngineError, Event, SamplingParams
from .source import ModelSource

MISSING = ("the vLLM backend needs the optional extra: pip install 'ftlab[vllm]' "
           "(vLLM runs on Linux with a CUDA GPU); or use --backend hf")


def require_vllm() -> None:
    if importlib.util.find_spec("vllm") is None:
        raise UserError(MISSING)


class VLLMEngine:
    backend = "vllm"

    def __init__(self, source: ModelSource, *, dtype: str = "auto", max_batch: int = 16,
                 max_len: int | None = None, gpu_memory_utilization: float = 0.85, log=None):
        require_vllm()
        from transformers import AutoTokenizer
        from vllm import AsyncEngineArgs, AsyncLLMEngine
        from vllm.lora.request import LoRARequest

        self.model_id = source.model_id
        self.tokenizer = AutoTokenizer.from_pretrained(source.tokenizer)
        args = {"model": str(source.base), "tokenizer": str(source.tokenizer), "max_num_seqs": max_batch,
                "dtype": {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(dtype, dtype),
                "gpu_memory_utilization": gpu_memory_utilization}
        if max_len:
            args["max_model_len"] = max_len
        self.lora = None
        if source.adapter is not None:
            args.update(enable_lora=True, max_lora_rank=_adapter_rank(source.adapter))
            self.lora = LoRARequest(source.adapter.name, 1, str(source.adapter))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ftlab-vllm", daemon=True)
        self._thread.start()

        async def start():
            return AsyncLLMEngine.from_engine_args(AsyncEngineArgs(**args))

        self.engine = asyncio.run_coroutine_threadsafe(start(), self._loop).result()
        self.max_len = max_len or int(getattr(self.tokenizer, "model_max_length", 4096) or 4096)
        self.max_batch = max_batch
        self._ids = itertools.count(1)

    def info(self) -> dict:
        return {"backend": self.backend, "max_batch": self.max_batch, "max_len": self.max_len,
                "adapter": self.lora.lora_path if self.lora else None}

    def submit(self, prompt_ids: list[int], params: SamplingParams, on_event) -> str:
        from vllm import SamplingParams as VllmParams

        if not prompt_ids:
            raise EngineError("the prompt is empty")
        request_id = f"req-{next(self._ids)}"
        sampling = VllmParams(n=params.n, temperature=params.temperature, top_p=params.top_p,
                              max_tokens=params.max_tokens, stop=params.stop or None, seed=params.seed)

        async def run():
            sent = [0] * params.n
            finished = [False] * params.n
            try:
                async for output in self.engine.generate({"prompt_token_ids": prompt_ids}, sampling, request_id,
                                                         lora_request=self.lora):
                    for choice in output.outputs:
                        if finished[choice.index]:
                            continue
                        text = params.prefix + choice.text
                        delta, sent[choice.index] = text[sent[choice.index]:], len(text)
                        reason = choice.finish_reason
                        if reason is not None:
                            finished[choice.index] = True
                            reason = "length" if reason == "length" else "stop"
                        on_event(Event(request_id, choice.index, delta, reason, len(prompt_ids),
                                       len(choice.token_ids)))
            except Exception as err:  # noqa: BLE001  reported to the waiting client
                on_event(Event(request_id, 0, "", "error", len(prompt_ids), 0, error=str(err)))

        asyncio.run_coroutine_threadsafe(run(), self._loop)
        return request_id

    def abort(self, request_id: str) -> None:
        asyncio.run_coroutine_threadsafe(self.engine.abort(request_id), self._loop)

    def shutdown(self) -> None:
        shutdown = getattr(self.engine, "shutdown", None)
        if shutdown is not None:
            self._loop.call_soon_threadsafe(shutdown)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


def _adapter_rank(adapter) -> int:
    import json

    try:
        return int(json.loads((adapter / "adapter_config.json").read_text()).get("r", 16))
    except (OSError, ValueError):
        return 16
