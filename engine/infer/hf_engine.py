"""The Hugging Face backend: continuous batching over a shared slot KV cache, streamed per token.

One scheduler thread owns the model. Between decode steps it admits waiting requests: their
prompts are prefilled (alone on the CPU, exactly as an unbatched `generate` would; right-padded in
groups on CUDA), their keys/values are copied into free rows of the `SlotCache`, and from then on
they decode together with every other running row, one token per row per step. Finished rows leave at once and their slots are reused, so a
short request never waits for a long one.

Per row: its own position ids, temperature/top_p, seeded generator, stop strings and token limit.
Greedy rows take the argmax, so a request gives the same tokens alone or batched (fp32 on the CPU).

On CUDA with `cuda_graphs=True`, the cache is one fixed allocation and each decode step shape
(rows rounded up to a power of two, columns to a multiple of 256) is captured once as a CUDA graph
and replayed: this removes the per-kernel launch cost that dominates batch-1 decoding.
`compile=True` also runs the decode step through `torch.compile`.

    engine = HFEngine(model, tokenizer, "my-model")
    rid = engine.submit(prompt_ids, SamplingParams(max_tokens=32), on_event)
"""

from __future__ import annotations

import inspect
import itertools
import os
import sys
import threading
import traceback
from collections import deque
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

from .kvslots import SlotCache
from .params import EngineError, Event, SamplingParams
from .textout import TextOutput

COLUMN_BUCKET = 256


@dataclass
class _Request:
    id: str
    prompt_ids: list[int]
    params: SamplingParams
    on_event: object
    aborted: bool = False
    open_choices: int = 0


@dataclass
class _Row:
    request: _Request
    index: int  # choice number
    out: TextOutput
    generator: torch.Generator | None
    max_new: int
    position: int  # position id of `next_token`
    start: int  # first cache column of the prompt
    next_token: int = 0
    generated: int = 0
    done: bool = False
    finish_reason: str | None = None
    text_sent: list = field(default_factory=list)


def _bucket_pow2(value: int, limit: int) -> int:
    size = 1
    while size < value:
        size *= 2
    return min(size, limit)


class HFEngine:
    backend = "hf"

    def __init__(self, model, tokenizer, model_id: str, *, max_batch: int = 16, max_len: int | None = None,
                 cuda_graphs: bool = False, compile: bool = False, prefill_batch: int | None = None,
                 prefill_tokens: int = 8192, log=None):
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.log = log or (lambda *_: None)
        config = model.config.get_text_config(decoder=True) if hasattr(model.config, "get_text_config") \
            else model.config
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        context = int(getattr(config, "max_position_embeddings", 2048) or 2048)
        window = getattr(config, "sliding_window", None)
        if window:  # slots keep every column: stay within the window so the result is exact
            context = min(context, int(window))
        self.cuda_graphs = bool(cuda_graphs) and self.device.type == "cuda"
        self.max_batch = max_batch
        # prompts prefilled together: on the CPU one at a time (exactly unbatched); on CUDA in groups
        self.prefill_batch = prefill_batch or (max_batch if self.device.type == "cuda" else 1)
        self.prefill_tokens = prefill_tokens
        if max_len is None:
            max_len = min(context, 2048) if self.cuda_graphs else context
        self.max_len = min(max_len, context)
        if self.cuda_graphs:
            self.max_len = max(COLUMN_BUCKET, self.max_len // COLUMN_BUCKET * COLUMN_BUCKET)
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        if self.cuda_graphs:
            slots, columns = max_batch, self.max_len
        else:
            slots, columns = min(4, max_batch), min(256, self.max_len)
        self.cache = SlotCache(config.num_hidden_layers, kv_heads, head_dim, self.dtype, self.device,
                               slots, columns, growable=not self.cuda_graphs)
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._keep_kw = "logits_to_keep" in params
        self._eager_mask = getattr(model.config, "_attn_implementation", "sdpa") == "eager"
        self.eos_ids = self._eos_ids()
        self._forward = model.forward
        if compile:
            torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
            self._forward = torch.compile(model.forward, dynamic=False)
        self._graphs: dict[tuple[int, int], tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self._graph_pool = None
        if self.cuda_graphs:
            self._ids_buf = torch.zeros(max_batch, 1, dtype=torch.long, device=self.device)
            self._pos_buf = torch.zeros(max_batch, 1, dtype=torch.long, device=self.device)
        self._waiting: deque[_Request] = deque()
        self._requests: dict[str, _Request] = {}
        self._rows: list[_Row] = []
        self._lock = threading.Condition()
        self._ids = itertools.count(1)
        self._stop = False
        self.steps = 0  # decode steps run
        self.shifts = 0  # timeline compactions
        self.largest_prefill = 0  # most prompts prefilled in one forward
        self._thread = threading.Thread(target=self._loop, name="ftlab-hf-engine", daemon=True)
        self._thread.start()

    # -- public --------------------------------------------------------------------------------
    def submit(self, prompt_ids: list[int], params: SamplingParams, on_event) -> str:
        """Queue a request; `on_event(Event)` is called from the engine thread."""
        if self._stop:
            raise EngineError("the engine is shut down")
        if not prompt_ids:
            raise EngineError("the prompt is empty")
        if len(prompt_ids) >= self.max_len:
            raise EngineError(f"the prompt is {len(prompt_ids)} tokens; this server's context is "
                              f"{self.max_len} tokens (prompt + answer)")
        if params.n > self.max_batch:
            raise EngineError(f"n={params.n} is more than this server's batch of {self.max_batch}")
        request = _Request(f"req-{next(self._ids)}", list(prompt_ids), params, on_event)
        with self._lock:
            self._requests[request.id] = request
            self._waiting.append(request)
            self._lock.notify()
        return request.id

    def abort(self, request_id: str) -> None:
        with self._lock:
            request = self._requests.get(request_id)
            if request is not None:
                request.aborted = True
                self._lock.notify()

    def shutdown(self) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify()
        self._thread.join(timeout=10)

    def info(self) -> dict:
        return {"backend": self.backend, "device": str(self.device), "dtype": str(self.dtype).replace("torch.", ""),
                "max_batch": self.max_batch, "max_len": self.max_len, "cuda_graphs": self.cuda_graphs}

    # -- scheduler loop ------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._stop and not self._rows and not self._waiting:
                    self._lock.wait()
                if self._stop:
                    break
            try:
                with torch.inference_mode():
                    self._drop_aborted()
                    self._admit()
                    if self._rows:
                        self._decode_step()
            except Exception as err:  # noqa: BLE001  keep serving: fail what was running, reset the cache
                traceback.print_exc(file=sys.stderr)
                self._fail_all(f"{type(err).__name__}: {err}")
        self._fail_all("the engine was shut down")

    def _fail_all(self, message: str) -> None:
        with self._lock:
            requests = {row.request.id: row.request for row in self._rows}
            requests.update({r.id: r for r in self._waiting})
            self._waiting.clear()
        self._rows = []
        self.cache.t = 0
        for request in requests.values():
            self._requests.pop(request.id, None)
            self._emit(request, Event(request.id, 0, "", "error", len(request.prompt_ids), 0, error=message))

    def _drop_aborted(self) -> None:
        with self._lock:
            for request in [r for r in self._waiting if r.aborted]:
                self._waiting.remove(request)
                self._requests.pop(request.id, None)
        if any(row.request.aborted for row in self._rows):
            for row in self._rows:
                if row.request.aborted:
                    row.done = True
            self._remove_done(emit=False)

    # -- admission -----------------------------------------------------------------------------
    def _admit(self) -> None:
        """Start waiting requests (FIFO) while slots and timeline columns allow, in prefill groups."""
        while True:
            with self._lock:
                waiting = list(self._waiting)
            group: list[tuple[_Request, int]] = []
            rows, tokens = len(self._rows), 0
            for request in waiting:
                n, p = request.params.n, len(request.prompt_ids)
                max_new = max(1, min(request.params.max_tokens, self.max_len - p))
                if len(group) >= self.prefill_batch or rows + n > self.max_batch:
                    break
                if group and tokens + p > self.prefill_tokens:
                    break
                # a first request that does not fit may fit once unused columns are freed
                if not self._fits([*group, (request, max_new)]) and (
                        group or not self._rows or not self._compact() or not self._fits([(request, max_new)])):
                    break
                group.append((request, max_new))
                rows, tokens = rows + n, tokens + p
            if not group:
                return
            with self._lock:
                for request, _ in group:
                    self._waiting.remove(request)
            self._start(group)

    def _fits(self, group: list[tuple[_Request, int]]) -> bool:
        """Can `group` join at one column, and every running row still finish, within max_len?"""
        t = self.cache.t if self._rows else 0
        longest = max(len(request.prompt_ids) for request, _ in group)
        remaining = max((row.max_new - row.generated for row in self._rows), default=0)
        return max(t, longest) + max(remaining, *(m for _, m in group)) <= self.max_len

    def _compact(self) -> bool:
        """Free the columns no running row uses any more; True when some were freed."""
        delta = min(row.start for row in self._rows)
        if delta <= 0:
            return False
        self.cache.shift_left(delta)
        self.shifts += 1
        for row in self._rows:
            row.start -= delta
        return True

    def _prefill(self, prompts: list[list[int]]):
        """Prompts through the model: (last-position logits [B, V], per prompt per layer (keys, values)).

        One prompt runs exactly as an unbatched `generate` would. Several are right-padded into one
        forward: with causal attention a real token never sees the padding after it, so no mask is
        needed and each prompt's keys/values are those of its own run.
        """
        lengths = [len(p) for p in prompts]
        longest = max(lengths)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.tensor([p + [pad] * (longest - len(p)) for p in prompts], dtype=torch.long, device=self.device)
        cache = DynamicCache()
        kwargs = {self._cache_kw: cache, "use_cache": True}
        keep = sorted({n - 1 for n in lengths})
        if self._keep_kw:
            kwargs["logits_to_keep"] = 1 if keep == [longest - 1] else torch.tensor(keep, device=self.device)
        else:
            keep = list(range(longest))
        logits = self.model(input_ids=ids, **kwargs).logits
        where = {position: i for i, position in enumerate(keep)}
        if logits.shape[1] == 1:
            last = logits[:, 0]
        else:
            pick = torch.tensor([where[n - 1] for n in lengths], device=self.device)
            last = logits[torch.arange(len(prompts), device=self.device), pick]
        layers = [[(layer.keys[i:i + 1, :, :n], layer.values[i:i + 1, :, :n]) for layer in cache.layers]
                  for i, n in enumerate(lengths)]
        return last.float(), layers

    def _start(self, group: list[tuple[_Request, int]]) -> None:
        logits, layers = self._prefill([request.prompt_ids for request, _ in group])
        self.largest_prefill = max(self.largest_prefill, len(group))
        if len(layers[0]) != len(self.cache.layers):
            raise EngineError("this model's cache layout is not supported by the hf batching engine")
        if not self._rows:
            self.cache.t = 0
            self.cache.mask.zero_()
        self.cache.t = max(self.cache.t, *(len(request.prompt_ids) for request, _ in group))
        first = len(self._rows)
        need_rows = first + sum(request.params.n for request, _ in group)
        if self.cache.growable:  # grow by doubling, never one row or column at a time
            longest = max(m for _, m in group)
            self.cache.allocate(_bucket_pow2(need_rows, self.max_batch),
                                min(self.max_len, _bucket_pow2(self.cache.t + longest, 1 << 30)))
        new_rows: list[_Row] = []
        for k, (request, max_new) in enumerate(group):
            params, p = request.params, len(request.prompt_ids)
            start = self.cache.t - p
            request.open_choices = params.n
            for index in range(params.n):
                generator = None
                if not params.greedy:
                    generator = torch.Generator(device="cpu")
                    seed = params.seed + index if params.seed is not None else int.from_bytes(os.urandom(7), "little")
                    generator.manual_seed(seed)
                row = _Row(request, index, TextOutput(self.tokenizer, params.stop, params.prefix), generator,
                           max_new, position=p, start=start)
                self.cache.place(len(self._rows), layers[k], start)
                self._rows.append(row)
                new_rows.append(row)
        choice_logits = torch.cat([logits[k:k + 1].expand(request.params.n, -1) for k, (request, _) in enumerate(group)])
        tokens = self._sample(choice_logits, new_rows)
        for row, token in zip(new_rows, tokens):
            self._advance(row, token)
        self._remove_done()

    # -- decoding ------------------------------------------------------------------------------
    def _decode_step(self) -> None:
        rows = self._rows
        count = len(rows)
        ids = torch.tensor([[row.next_token] for row in rows], dtype=torch.long)
        pos = torch.tensor([[row.position] for row in rows], dtype=torch.long)
        cache = self.cache
        if self.cuda_graphs:
            b = _bucket_pow2(count, self.max_batch)
            cols = min(self.max_len, -(-(cache.t + 1) // COLUMN_BUCKET) * COLUMN_BUCKET)
            cache.begin_step(cols)
            logits = self._replay(b, cols, ids, pos)[:count]
        else:
            mask = cache.begin_step(cache.t + 1)[:count]
            logits = self._step(ids.to(self.device), pos.to(self.device), mask)[:, -1]
        cache.end_step()
        self.steps += 1
        tokens = self._sample(logits.float(), rows)
        for row, token in zip(rows, tokens):
            row.position += 1
            self._advance(row, token)
        self._remove_done()

    def _step(self, ids, pos, mask):
        if self._eager_mask:
            mask = torch.where(mask, 0.0, torch.finfo(self.dtype).min).to(self.dtype)
        kwargs = {self._cache_kw: self.cache, "use_cache": True, "attention_mask": mask, "position_ids": pos}
        return self._forward(input_ids=ids, **kwargs).logits

    def _replay(self, b: int, cols: int, ids, pos) -> torch.Tensor:
        count = ids.shape[0]  # rows past `count` keep stale ids/positions: their output is ignored
        self._ids_buf[:count].copy_(ids.pin_memory(), non_blocking=True)
        self._pos_buf[:count].copy_(pos.pin_memory(), non_blocking=True)
        key = (b, cols)
        if key not in self._graphs:
            mask = self.cache.mask[:b, None, None, :cols]
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):  # warm-up; rewrites column t with the same values
                    self._step(self._ids_buf[:b], self._pos_buf[:b], mask)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._graph_pool):
                out = self._step(self._ids_buf[:b], self._pos_buf[:b], mask)[:, -1]
            self._graph_pool = graph.pool()
            self._graphs[key] = (graph, out)
            self.log(f"captured decode graph rows={b} columns={cols}")
        graph, out = self._graphs[key]
        graph.replay()
        return out

    def _sample(self, logits: torch.Tensor, rows: list[_Row]) -> list[int]:
        greedy = logits.argmax(dim=-1).tolist()
        sampled = [i for i, row in enumerate(rows) if row.generator is not None]
        if sampled:
            cpu = logits[sampled].cpu()
            for j, i in enumerate(sampled):
                params = rows[i].request.params
                probs = torch.softmax(cpu[j] / params.temperature, dim=-1)
                if params.top_p < 1.0:
                    sorted_probs, order = torch.sort(probs, descending=True)
                    cumulative = torch.cumsum(sorted_probs, dim=-1)
                    drop = cumulative - sorted_probs > params.top_p  # keep the smallest set reaching top_p
                    sorted_probs[drop] = 0.0
                    probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
                greedy[i] = int(torch.multinomial(probs, 1, generator=rows[i].generator))
        return greedy

    def _advance(self, row: _Row, token: int) -> None:
        """Account for a new token of `row`: text out, stop checks."""
        row.generated += 1
        if token in self.eos_ids and not row.request.params.ignore_eos:
            self._finish(row, "stop", row.out.finish())
            return
        delta = row.out.add(token)
        if row.out.stopped:
            self._finish(row, "stop", delta)
            return
        if row.generated >= row.max_new:
            self._finish(row, "length", delta + row.out.finish())
            return
        row.next_token = token
        if delta:
            self._emit(row.request, Event(row.request.id, row.index, delta,
                                          prompt_tokens=len(row.request.prompt_ids),
                                          completion_tokens=row.generated))

    def _finish(self, row: _Row, reason: str, delta: str) -> None:
        row.done, row.finish_reason = True, reason
        request = row.request
        request.open_choices -= 1
        self._emit(request, Event(request.id, row.index, delta, reason, len(request.prompt_ids), row.generated))
        if request.open_choices <= 0:
            with self._lock:
                self._requests.pop(request.id, None)

    def _remove_done(self, emit: bool = True) -> None:
        rows = self._rows
        for i in range(len(rows) - 1, -1, -1):
            if not rows[i].done:
                continue
            if not emit:
                with self._lock:
                    self._requests.pop(rows[i].request.id, None)
            last = len(rows) - 1
            if i != last:
                self.cache.move_row(last, i)
                rows[i] = rows[last]
            rows.pop()

    def _emit(self, request: _Request, event: Event) -> None:
        if request.aborted:
            return
        try:
            request.on_event(event)
        except Exception:  # noqa: BLE001  a broken consumer must not stop the engine
            request.aborted = True

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (getattr(self.model, "generation_config", None), self.model.config, self.tokenizer):
            value = getattr(source, "eos_token_id", None)
            if value is None:
                continue
            ids.update(value if isinstance(value, (list, tuple, set)) else [value])
        return {int(i) for i in ids}


def wait_all(engine, prompt_ids: list[int], params: SamplingParams, timeout: float = 600.0) -> list[dict]:
    """Run one request to the end (blocking); returns per choice {"text", "finish_reason", "tokens"}."""
    done = threading.Event()
    results = [{"text": "", "finish_reason": None, "tokens": 0} for _ in range(params.n)]
    errors: list[str] = []
    left = [params.n]

    def on_event(event: Event) -> None:
        if event.error:
            errors.append(event.error)
            done.set()
            return
        slot = results[event.index]
        slot["text"] += event.text
        slot["tokens"] = event.completion_tokens
        if event.finish_reason:
            slot["finish_reason"] = event.finish_reason
            left[0] -= 1
            if left[0] == 0:
                done.set()

    engine.submit(prompt_ids, params, on_event)
    if not done.wait(timeout):
        raise EngineError(f"no answer within {timeout:.0f} s")
    if errors:
        raise EngineError(errors[0])
    return results

