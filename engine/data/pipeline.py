"""The data pipeline behind `prepare_dataset`: registry → rows → samples → tokens → (packed) arrow.

    prepared = prepare_dataset(profile.data, "sft", tokenizer)
    prepared.train  # datasets.Dataset (memory-mapped arrow): input_ids, labels[, position_ids]

Rows stream through in batches (bounded memory): each row becomes a `Sample`, is rendered through
the chat template, the batch is tokenized at once with offsets and truncated like LlamaFactory.
Encoded rows go to an arrow file in a private cache folder keyed by a hash of the files, the
data settings and the tokenizer, so a second run with the same inputs loads in a second. The
held-out split (val_size) and packing happen on the encoded rows; packing stays within windows of
a few thousand samples, so memory does not grow with the data.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ftlab import paths
from ftlab.errors import UserError

from .encode import IGNORE, encode_turns, encode_turns_lazy, infer_seqlen, masked_target, supervised
from .errors import RowErrors
from .formats import RowError, Sample, to_sample
from .packing import pack_rows
from .readers import data_files, iter_rows
from .registry import DatasetSpec, load_registry
from .render import AutoRenderer, Turn

CACHE_VERSION = "1"
BATCH_ROWS = 512
PACK_WINDOW = 4096
STAGE_KIND = {"pt": "pt", "sft": "sft", "rm": "pairwise", "dpo": "pairwise", "orpo": "pairwise",
              "simpo": "pairwise", "kto": "kto", "ppo": "unsupervised", "eval": "unsupervised",
              "predict": "unsupervised"}


@dataclass
class PreparedData:
    """Tokenized data for a stage: `train`, optional `eval` (from val_size) and `stats`."""

    train: Any
    eval: Any | None
    stats: dict = field(default_factory=dict)


def stage_kind(stage: str) -> str:
    try:
        return STAGE_KIND[stage]
    except KeyError:
        raise UserError(f"stage {stage!r} has no data pipeline; expected one of {', '.join(STAGE_KIND)}") from None


# ----------------------------------------------------------------------------- rows → samples

def _rows(spec: DatasetSpec, seed: int) -> Iterator[tuple[str, int, Any]]:
    """The spec's rows; with num_samples, that many drawn at random (repeating rows when the file
    has fewer), like LlamaFactory."""
    if not spec.num_samples:
        yield from iter_rows(spec.path)
        return
    rows = list(iter_rows(spec.path))
    if not rows:
        return
    rng = np.random.default_rng(seed)
    picks = rng.permutation(len(rows))[: spec.num_samples]
    if spec.num_samples > len(rows):
        picks = np.concatenate([picks, rng.choice(len(rows), spec.num_samples - len(rows))])
    for i in picks.tolist():
        yield rows[i]


def _spec_samples(spec: DatasetSpec, stage: str, max_samples: int | None, errors: RowErrors,
                  counter: list[int], seed: int = 42) -> Iterator[tuple[str, Sample]]:
    taken = 0
    for file, index, row in _rows(spec, seed):
        if max_samples is not None and taken >= max_samples:
            return
        taken += 1
        counter[0] += 1
        where = f"{file} row {index}"
        try:
            sample = to_sample(spec, row, stage)
        except RowError as err:
            errors.add(where, err.reason, err.detail)
            continue
        if stage == "pt" and not (sample.text or "").strip():
            errors.add(where, "empty text")
            continue
        yield where, sample


def _batches(items: Iterator, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# ----------------------------------------------------------------------------- samples → tokens

class _Encoder:
    """Stage-specific encoding of a batch of samples into rows of numpy arrays."""

    def __init__(self, kind: str, data, tokenizer, renderer):
        self.kind = kind
        self.data = data
        self.tokenizer = tokenizer
        self.backend = tokenizer.backend_tokenizer
        self.renderer = renderer
        self.eos_id = tokenizer.eos_token_id
        self.efficient_eos = self.eos_id if getattr(renderer, "efficient_eos", False) else None
        self.truncated = 0
        self.lazy_prefixes = self._lazy_prefixes() if kind == "sft" and not data.mask_history else None
        self._pt_buffer: list[np.ndarray] = []
        self._pt_len = 0

    def encode(self, batch: list[tuple[str, Sample]], errors: RowErrors) -> list[dict[str, np.ndarray]]:
        return getattr(self, "_" + self.kind)(batch, errors)

    def _lazy_prefixes(self) -> tuple[str, ...] | None:
        """Special tokens that start every turn, if tokenizing turn by turn is exact here (probed):
        then turns past the cutoff are never tokenized."""
        specials = tuple(t for t in self.tokenizer.all_special_tokens if t)
        added = getattr(self.tokenizer, "added_tokens_decoder", {}) or {}
        specials += tuple(t.content for t in added.values() if getattr(t, "special", False))
        if not specials:
            return None
        probe = Sample(messages=[("user", "Hi there,\n how are you?"), ("assistant", " Fine.\n\n"),
                                 ("user", "\nGood "), ("assistant", "Great!  ")], system="Be kind. ")
        try:
            turns = self.renderer.render(probe)
        except Exception:
            return None
        if not all(t.prompt.startswith(specials) for t in turns):
            return None
        whole = self.backend.encode("".join(t.prompt + t.response for t in turns), add_special_tokens=False).ids
        pieces = [i for t in turns for i in
                  self.backend.encode(t.prompt + t.response, add_special_tokens=False).ids]
        return specials if whole == pieces else None

    def _encode_sft(self, rendered: list[list]):
        prefixes = self.lazy_prefixes
        if prefixes and all(t.prompt.startswith(prefixes) for turns in rendered for t in turns[1:]):
            return encode_turns_lazy(self.backend, rendered, self.data.cutoff_len,
                                     1 if self.efficient_eos is not None else 0)
        return encode_turns(self.backend, rendered), [False] * len(rendered)

    def start(self, batch: list[tuple[str, Sample]], errors: RowErrors, pool):
        """Begin encoding `batch`; returns a callable that finishes it. For sft the Rust tokenizer
        runs in `pool` (it releases the GIL) while Python finishes the previous batch."""
        if self.kind != "sft" or pool is None:
            return lambda: self.encode(batch, errors)
        places, rendered = self._render(batch, errors, self.renderer.render)
        future = pool.submit(self._encode_sft, rendered)
        return lambda: self._sft_rows(places, *future.result(), errors)

    def _render(self, batch, errors: RowErrors, fn):
        out, places = [], []
        for where, sample in batch:
            try:
                out.append(fn(sample))
                places.append(where)
            except RowError as err:
                errors.add(where, err.reason, err.detail)
        return places, out

    def _sft(self, batch, errors: RowErrors) -> list[dict]:
        places, rendered = self._render(batch, errors, self.renderer.render)
        return self._sft_rows(places, *self._encode_sft(rendered), errors)

    def _sft_rows(self, places, encoded, skipped, errors: RowErrors) -> list[dict]:
        out = []
        data = self.data
        for where, pairs, more in zip(places, encoded, skipped):
            ids, labels, cut = supervised(pairs, data.cutoff_len, data.train_on_prompt, data.mask_history,
                                          self.efficient_eos)
            cut = cut or more
            if not (labels != IGNORE).any():
                errors.add(where, "nothing left to train after cutoff" if cut else "no trained tokens",
                           f"cutoff_len {data.cutoff_len}" if cut else "")
                continue
            self.truncated += cut
            out.append({"input_ids": ids, "labels": labels})
        return out

    def _prompt_and(self, sample: Sample, responses: list) -> list:
        prompt = self.renderer.render_prompt(sample)
        turns = []
        for response in responses:
            text, n_train = self.renderer.render_response(sample, response)
            turns.append([Turn(prompt=prompt, response=text, train_chars=n_train)])
        return turns

    def _eos(self, tgt: np.ndarray, n_train: int) -> tuple[np.ndarray, int]:
        if self.efficient_eos is None:
            return tgt, n_train
        return np.concatenate([tgt, np.asarray([self.eos_id], np.int32)]), len(tgt) + 1

    def _pairwise(self, batch, errors: RowErrors) -> list[dict]:
        places, rendered = self._render(
            batch, errors, lambda s: self._prompt_and(s, [s.chosen, s.rejected]))
        flat = [turns for pair in rendered for turns in pair]
        encoded = encode_turns(self.backend, flat)
        out = []
        for index, where in enumerate(places):
            (src, c_tgt, c_n), = encoded[2 * index]
            (_, r_tgt, r_n), = encoded[2 * index + 1]
            c_tgt, c_n = self._eos(c_tgt, c_n)
            r_tgt, r_n = self._eos(r_tgt, r_n)
            s_len, t_len = infer_seqlen(len(src), max(len(c_tgt), len(r_tgt)), self.data.cutoff_len)
            cut = s_len < len(src) or t_len < max(len(c_tgt), len(r_tgt))
            src_labels = src[:s_len] if self.data.train_on_prompt else np.full(s_len, IGNORE, np.int32)
            row = {}
            for name, tgt, n in (("chosen", c_tgt, c_n), ("rejected", r_tgt, r_n)):
                keep = min(t_len, len(tgt))
                row[f"{name}_input_ids"] = np.concatenate([src[:s_len], tgt[:keep]])
                row[f"{name}_labels"] = np.concatenate([src_labels, masked_target(tgt, n, keep)])
            if not ((row["chosen_labels"] != IGNORE).any() and (row["rejected_labels"] != IGNORE).any()):
                errors.add(where, "nothing left to train after cutoff", f"cutoff_len {self.data.cutoff_len}")
                continue
            self.truncated += cut
            out.append(row)
        return out

    def _kto(self, batch, errors: RowErrors) -> list[dict]:
        def split(sample: Sample):
            if sample.kto_tag is None:
                raise RowError("missing column 'kto_tag'", "kto needs a kto_tag column")
            head = Sample(messages=sample.messages[:-1], system=sample.system, tools=sample.tools)
            return head, sample.messages[-1], sample.kto_tag

        places, parts = self._render(batch, errors, split)
        if not parts:
            return []
        # the KL pair: each prompt with another sample's response (the batch reversed), like LlamaFactory
        kl_responses = [p[1] for p in parts][::-1]
        turns = []
        for (head, response, _), kl in zip(parts, kl_responses):
            turns += self._prompt_and(head, [response, kl])
        encoded = encode_turns(self.backend, turns)
        out = []
        for index, (where, (_, _, tag)) in enumerate(zip(places, parts)):
            row = {"kto_tag": bool(tag)}
            for prefix, ((src, tgt, n),) in (("", encoded[2 * index]), ("kl_", encoded[2 * index + 1])):
                tgt, n = self._eos(tgt, n)
                s_len, t_len = infer_seqlen(len(src), len(tgt), self.data.cutoff_len)
                if not prefix:
                    self.truncated += s_len < len(src) or t_len < len(tgt)
                row[f"{prefix}input_ids"] = np.concatenate([src[:s_len], tgt[:t_len]])
                row[f"{prefix}labels"] = np.concatenate([np.full(s_len, IGNORE, np.int32),
                                                         masked_target(tgt, n, t_len)])
            if not (row["labels"] != IGNORE).any():
                errors.add(where, "nothing left to train after cutoff", f"cutoff_len {self.data.cutoff_len}")
                continue
            out.append(row)
        return out

    def _unsupervised(self, batch, errors: RowErrors) -> list[dict]:
        def split(sample: Sample):
            if len(sample.messages) % 2 == 0:  # ends with the reference answer
                head = Sample(messages=sample.messages[:-1], system=sample.system, tools=sample.tools)
                return self._prompt_and(head, [sample.messages[-1]])[0]
            return [Turn(prompt=self.renderer.render_prompt(sample), response="", train_chars=0)]

        places, turns = self._render(batch, errors, split)
        out = []
        for where, ((src, tgt, n),) in zip(places, encode_turns(self.backend, turns)):
            s_len, t_len = infer_seqlen(len(src), len(tgt), self.data.cutoff_len)
            self.truncated += s_len < len(src) or t_len < len(tgt)
            # left-truncate the prompt: generation continues from its end
            out.append({"input_ids": src[len(src) - s_len:], "labels": masked_target(tgt, n, t_len)})
        return out

    def _pt(self, batch, errors: RowErrors) -> list[dict]:
        encodings = self.backend.encode_batch([s.text for _, s in batch], add_special_tokens=False)
        cutoff = self.data.cutoff_len
        out = []
        eos = np.asarray([self.eos_id], dtype=np.int32)
        for encoding in encodings:
            self._pt_buffer += [np.asarray(encoding.ids, dtype=np.int32), eos]
            self._pt_len += len(encoding.ids) + 1
            if self._pt_len >= cutoff:
                joined = np.concatenate(self._pt_buffer)
                whole = len(joined) // cutoff * cutoff
                out += [self._pt_row(joined[i:i + cutoff]) for i in range(0, whole, cutoff)]
                rest = joined[whole:]
                self._pt_buffer, self._pt_len = [rest], len(rest)
        return out

    def flush(self) -> list[dict]:
        if self.kind == "pt" and self._pt_len:
            joined = np.concatenate(self._pt_buffer)
            self._pt_buffer, self._pt_len = [], 0
            return [self._pt_row(joined)]
        return []

    @staticmethod
    def _pt_row(ids: np.ndarray) -> dict:
        return {"input_ids": ids, "labels": ids}


# ----------------------------------------------------------------------------- arrow files

COLUMNS = {"pt": ["input_ids", "labels"], "sft": ["input_ids", "labels"],
           "pairwise": ["chosen_input_ids", "chosen_labels", "rejected_input_ids", "rejected_labels"],
           "kto": ["input_ids", "labels", "kl_input_ids", "kl_labels", "kto_tag"],
           "unsupervised": ["input_ids", "labels"]}


def _schema(columns: list[str], vocab: int):
    import pyarrow as pa

    id_type = pa.uint16() if vocab <= 65536 else pa.int32()
    fields = []
    for name in columns:
        if name == "kto_tag":
            fields.append((name, pa.bool_()))
        elif name.endswith("input_ids"):
            fields.append((name, pa.list_(id_type)))
        else:  # labels (need -100) and position_ids
            fields.append((name, pa.list_(pa.int32())))
    return pa.schema(fields)


class _ArrowOut:
    """Append rows of numpy arrays to an arrow stream file (readable by `Dataset.from_file`)."""

    def __init__(self, path: Path, columns: list[str], vocab: int):
        import pyarrow as pa

        self.pa = pa
        self.schema = _schema(columns, vocab)
        self.columns = columns
        self.sink = pa.OSFile(str(path), "wb")
        self.writer = pa.ipc.new_stream(self.sink, self.schema)
        self.rows = 0
        self.tokens = 0
        self.lengths: list[int] = []

    def write(self, rows: list[dict]) -> None:
        if not rows:
            return
        pa = self.pa
        self.writer.write_batch(_record_batch(pa, self.schema, self.columns, rows))
        self.rows += len(rows)
        ids_column = "input_ids" if "input_ids" in self.columns else "chosen_input_ids"
        lengths = [len(r[ids_column]) for r in rows]
        self.lengths += lengths
        self.tokens += int(sum(lengths))

    def close(self) -> None:
        self.writer.close()
        self.sink.close()


def _record_batch(pa, schema, columns, rows):
    arrays = []
    for name, field_ in zip(columns, schema):
        parts = [r[name] for r in rows]
        if name == "kto_tag":
            arrays.append(pa.array(parts, pa.bool_()))
            continue
        lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
        offsets = np.zeros(len(parts) + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        values = np.concatenate(parts).astype(field_.type.value_type.to_pandas_dtype(), copy=False)
        arrays.append(pa.ListArray.from_arrays(pa.array(offsets), pa.array(values)))
    return pa.record_batch(arrays, schema=schema)


def _read_table(path: Path):
    import pyarrow as pa

    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_stream(source).read_all()


def _rows_of(table, indices: np.ndarray, columns: list[str]) -> Iterator[list[dict]]:
    """Rows (numpy arrays) of `table` at `indices`, a window at a time."""
    for start in range(0, len(indices), PACK_WINDOW):
        part = table.take(indices[start:start + PACK_WINDOW])
        cols = {}
        for name in columns:
            column = part.column(name).combine_chunks()
            if name == "kto_tag":
                cols[name] = column.to_pylist()
                continue
            offsets = column.offsets.to_numpy()
            values = column.values.to_numpy(zero_copy_only=False)
            cols[name] = [values[offsets[i]:offsets[i + 1]] for i in range(len(part))]
        yield [{name: cols[name][i] for name in columns} for i in range(len(part))]


def _pack(rows: list[dict], cutoff_len: int) -> list[dict]:
    return [{"input_ids": i, "labels": lab, "position_ids": p} for i, lab, p in
            pack_rows([r["input_ids"] for r in rows], [r["labels"] for r in rows], cutoff_len)]


# ----------------------------------------------------------------------------- cache key

def _tokenizer_fingerprint(tokenizer) -> str:
    h = hashlib.sha256()
    h.update(tokenizer.backend_tokenizer.to_str().encode())
    h.update(str(getattr(tokenizer, "chat_template", "")).encode())
    h.update(f"{tokenizer.eos_token}|{tokenizer.pad_token}|{tokenizer.bos_token}".encode())
    return h.hexdigest()


_NOT_IN_KEY = ("overwrite_cache", "preprocessing_num_workers", "tokenized_path", "buffer_size")


def cache_key(data, stage: str, specs: list[DatasetSpec], tokenizer, seed: int) -> str:
    """Hash of the files (path, size, mtime), the data settings, the stage kind, tokenizer and seed."""
    h = hashlib.sha256()
    h.update(CACHE_VERSION.encode())
    h.update(stage_kind(stage).encode())
    settings = data.model_dump(mode="json")
    for key in _NOT_IN_KEY:
        settings.pop(key, None)
    h.update(json.dumps(settings, sort_keys=True).encode())
    h.update(str(seed).encode())
    for spec in specs:
        h.update(json.dumps({"name": spec.name, "formatting": spec.formatting, "columns": spec.columns,
                             "tags": spec.tags, "ranking": spec.ranking}, sort_keys=True).encode())
        for file in data_files(spec.path):
            st = file.stat()
            h.update(f"{file.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    h.update(_tokenizer_fingerprint(tokenizer).encode())
    return h.hexdigest()[:24]


# ----------------------------------------------------------------------------- renderers and mixing

class _AutoFast:
    """`template: auto` through the equivalent named template when one was detected; the Jinja
    template itself for samples with tools or tool turns (their formats differ by model)."""

    def __init__(self, fast, jinja):
        self.fast, self.jinja = fast, jinja
        self.name = f"auto ({fast.name})"
        self.efficient_eos = False
        self.stop = jinja.stop

    def _pick(self, sample: Sample):
        tooly = sample.tools or any(r in ("function", "observation") for r, _ in sample.messages)
        return self.jinja if tooly else self.fast

    def render(self, sample):
        return self._pick(sample).render(sample)

    def render_prompt(self, sample):
        return self._pick(sample).render_prompt(sample)

    def render_response(self, sample, response):
        pick = self.jinja if response[0] == "function" else self._pick(sample)
        return pick.render_response(sample, response)


def make_renderer(data, tokenizer):
    """The renderer for data.template (auto: the tokenizer's own template, at Python speed if possible)."""
    from .templates import detect, get_template

    thinking = getattr(data, "enable_thinking", None)
    if data.template == "auto":
        jinja = AutoRenderer(tokenizer, data.default_system, thinking)
        fast = detect(tokenizer, data.default_system) if thinking is None else None
        return _AutoFast(fast, jinja) if fast is not None else jinja
    return get_template(data.template).renderer(tokenizer, data.default_system)


def _interleave(streams: list, probs: list[float], over: bool, seed: int) -> Iterator:
    """Draw from `streams` (factories of iterators) with `probs`; under: stop when one runs out,
    over: restart exhausted ones until every stream has been exhausted once (datasets' semantics)."""
    rng = np.random.default_rng(seed)
    iters = [factory() for factory in streams]
    exhausted = [False] * len(streams)
    p = np.asarray(probs, dtype=float)
    p = p / p.sum()
    while True:
        pick = int(rng.choice(len(iters), p=p))
        try:
            yield next(iters[pick])
        except StopIteration:
            if not over:
                return
            exhausted[pick] = True
            if all(exhausted):
                return
            iters[pick] = streams[pick]()
            try:
                yield next(iters[pick])
            except StopIteration:  # an empty dataset
                return


def _mixed_samples(data, stage, specs, errors: RowErrors, counter: list[int], seed: int) -> Iterator:
    streams = [lambda spec=spec: _spec_samples(spec, stage, data.max_samples, errors, counter, seed)
               for spec in specs]
    strategy = getattr(data, "mix_strategy", "concat")
    if strategy == "concat" or len(specs) == 1:
        for stream in streams:
            yield from stream()
        return
    probs = getattr(data, "interleave_probs", None) or [1.0] * len(specs)
    if len(probs) != len(specs):
        raise UserError(f"data.interleave_probs has {len(probs)} values for {len(specs)} datasets")
    yield from _interleave(streams, probs, strategy == "interleave_over", seed)


# ----------------------------------------------------------------------------- entry point

def _load(folder: Path):
    from datasets import Dataset

    stats = json.loads((folder / "stats.json").read_text())
    train = Dataset.from_file(str(folder / "train.arrow"))
    evaluation = Dataset.from_file(str(folder / "eval.arrow")) if (folder / "eval.arrow").exists() else None
    return PreparedData(train=train, eval=evaluation, stats=stats)


def prepare_dataset(data, stage: str, tokenizer, *, seed: int = 42, log=print) -> PreparedData:
    """Tokenize (or load from the cache) the profile's datasets for `stage`."""
    kind = stage_kind(stage)
    specs = load_registry(data.dataset_dir, data.dataset)
    if getattr(data, "streaming", False):
        return _streaming(data, stage, kind, specs, tokenizer, seed, log)
    key = cache_key(data, stage, specs, tokenizer, seed)
    tokenized = getattr(data, "tokenized_path", None)
    folder = Path(tokenized) if tokenized else paths.cache_dir() / "data" / key
    if (folder / "stats.json").exists() and not data.overwrite_cache:
        prepared = _load(folder)
        if tokenized and prepared.stats.get("key") not in (None, key):
            log(f"data: {folder} was tokenized with other settings or files; using it as it is "
                "(tokenized_path), set overwrite_cache to rebuild")
        log(f"data: {prepared.stats['kept']} samples from the cache ({folder})")
        return prepared
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = folder.parent / f"{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        stats = _build(data, stage, kind, specs, tokenizer, seed, work, log)
        stats["key"] = key
        (work / "stats.json").write_text(json.dumps(stats, indent=1))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(work, folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _load(folder)


def _histogram(lengths: list[int], cutoff: int, bins: int = 8) -> list[list[int]]:
    if not lengths:
        return []
    edges = np.linspace(0, cutoff, bins + 1).astype(int)
    counts, _ = np.histogram(np.minimum(lengths, cutoff), bins=edges)
    return [[int(edges[i]), int(edges[i + 1]), int(c)] for i, c in enumerate(counts)]


def _build(data, stage, kind, specs, tokenizer, seed, work: Path, log) -> dict:
    started = time.monotonic()
    renderer = make_renderer(data, tokenizer) if kind != "pt" else None
    encoder = _Encoder(kind, data, tokenizer, renderer)
    errors = RowErrors()
    counter = [0]
    vocab = len(tokenizer)
    columns = COLUMNS[kind]

    packed = bool(data.packing) and kind == "sft"
    train_cols = columns + ["position_ids"] if packed else columns
    # without a held-out split, rows go straight to train.arrow (packed a window at a time);
    # with one, they go to an intermediate file first, from which the split is drawn
    direct = not data.val_size
    encoded_path = work / ("train.arrow" if direct else "encoded.arrow")
    out = _ArrowOut(encoded_path, train_cols if direct else columns, vocab)
    lengths: list[int] = []
    window: list[dict] = []
    ids_column = columns[0]

    def emit(rows: list[dict]) -> None:
        lengths.extend(len(r[ids_column]) for r in rows)
        if direct and packed:
            window.extend(rows)
            while len(window) >= PACK_WINDOW:
                out.write(_pack(window[:PACK_WINDOW], data.cutoff_len))
                del window[:PACK_WINDOW]
        else:
            out.write(rows)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenize") as pool:
        pending = None
        for batch in _batches(_mixed_samples(data, stage, specs, errors, counter, seed), BATCH_ROWS):
            job = encoder.start(batch, errors, pool)
            if pending is not None:
                emit(pending())
            pending = job
        if pending is not None:
            emit(pending())
    emit(encoder.flush())
    if window:
        out.write(_pack(window, data.cutoff_len))
    out.close()
    names = [s.name for s in specs]
    n = len(lengths)
    if n == 0:
        raise errors.no_valid_samples(names, counter[0])

    n_eval = 0
    train_out = out
    eval_tokens = 0
    if not direct:
        table = _read_table(encoded_path)
        n_eval = _eval_count(data.val_size, n)
        perm = np.random.default_rng(seed).permutation(n)
        eval_idx = np.sort(perm[:n_eval])
        train_idx = np.sort(perm[n_eval:])
        train_out = _ArrowOut(work / "train.arrow", train_cols, vocab)
        for rows in _rows_of(table, train_idx, columns):
            train_out.write(_pack(rows, data.cutoff_len) if packed else rows)
        train_out.close()
        eval_out = _ArrowOut(work / "eval.arrow", columns, vocab)
        for rows in _rows_of(table, eval_idx, columns):
            eval_out.write(rows)
        eval_out.close()
        eval_tokens = eval_out.tokens
        del table
        encoded_path.unlink()
    elapsed = time.monotonic() - started
    stats = {"samples": counter[0], "kept": n, "truncated": encoder.truncated,
             "dropped": errors.total, "dropped_by_reason": dict(errors.counts),
             "dropped_examples": errors.examples,
             "tokens": train_out.tokens + eval_tokens,
             "train_rows": train_out.rows, "eval_rows": n_eval, "packed": packed,
             "length_histogram": _histogram(lengths, data.cutoff_len),
             "template": getattr(renderer, "name", None), "seconds": round(elapsed, 2)}
    log(f"data: {', '.join(names)}: {counter[0]} rows → {n} samples "
        f"({encoder.truncated} truncated, {errors.total} dropped) in {elapsed:.1f}s")
    if errors.total:
        log("data: dropped rows:\n" + errors.summary())
    return stats


def _eval_count(val_size: float, n: int) -> int:
    if not val_size:
        return 0
    n_eval = int(val_size) if val_size >= 1 else math.ceil(val_size * n)
    if n_eval >= n:
        raise UserError(f"data.val_size {val_size} leaves no training samples ({n} samples)")
    return n_eval


# ----------------------------------------------------------------------------- streaming

def _streaming(data, stage, kind, specs, tokenizer, seed, log) -> PreparedData:
    """An IterableDataset that reads, encodes and packs on the fly (data larger than memory).
    The trainer must set max_steps (an iterable has no length). val_size must be a count: the
    first val_size samples are held out."""
    from datasets import Dataset, IterableDataset

    if data.val_size and data.val_size < 1:
        raise UserError("data.val_size must be a number of samples (>= 1) with data.streaming")
    packed = bool(data.packing) and kind == "sft"

    def rows(skip: int = 0, limit: int | None = None, pack: bool = packed):
        renderer = make_renderer(data, tokenizer) if kind != "pt" else None
        encoder = _Encoder(kind, data, tokenizer, renderer)
        errors, counter = RowErrors(), [0]
        seen = 0
        window: list[dict] = []
        for batch in _batches(_mixed_samples(data, stage, specs, errors, counter, seed), BATCH_ROWS):
            for row in encoder.encode(batch, errors):
                seen += 1
                if seen <= skip:
                    continue
                if limit is not None and seen > skip + limit:
                    return
                if pack:
                    window.append(row)
                    if len(window) >= PACK_WINDOW:
                        yield from _pack(window, data.cutoff_len)
                        window = []
                else:
                    yield row
        for row in encoder.flush():
            yield row
        if window:
            yield from _pack(window, data.cutoff_len)
        if seen == 0:
            raise errors.no_valid_samples([s.name for s in specs], counter[0])

    def as_lists(gen):
        for row in gen:
            yield {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in row.items()}

    n_eval = int(data.val_size or 0)
    train = IterableDataset.from_generator(lambda: as_lists(rows(skip=n_eval)))
    if getattr(data, "buffer_size", 1) > 1:
        train = train.shuffle(seed=seed, buffer_size=data.buffer_size)
    evaluation = None
    if n_eval:
        eval_rows = list(as_lists(rows(limit=n_eval, pack=False)))
        evaluation = Dataset.from_list(eval_rows)
    log(f"data: streaming {', '.join(s.name for s in specs)} ({'packed' if packed else 'unpacked'})")
    return PreparedData(train=train, eval=evaluation, stats={"streaming": True, "eval_rows": n_eval})
