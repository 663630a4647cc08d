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

from .encode import IGNORE, encode_turns, supervised
from .errors import RowErrors
from .formats import RowError, Sample, to_sample
from .packing import pack_rows
from .readers import data_files, iter_rows
from .registry import DatasetSpec, load_registry
from .render import AutoRenderer

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

def _spec_samples(spec: DatasetSpec, stage: str, max_samples: int | None, errors: RowErrors,
                  counter: list[int]) -> Iterator[tuple[str, Sample]]:
    taken = 0
    for file, index, row in iter_rows(spec.path):
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
        self.truncated = 0
        self._pt_buffer: list[np.ndarray] = []
        self._pt_len = 0

    def encode(self, batch: list[tuple[str, Sample]], errors: RowErrors) -> list[dict[str, np.ndarray]]:
        if self.kind == "pt":
            return self._pt(batch)
        if self.kind == "sft":
            return self._sft(batch, errors)
        raise UserError(f"data for {self.kind} stages is not supported yet")

    def _sft(self, batch, errors: RowErrors) -> list[dict]:
        rendered, places = [], []
        for where, sample in batch:
            try:
                rendered.append(self.renderer.render(sample))
                places.append(where)
            except RowError as err:
                errors.add(where, err.reason, err.detail)
        out = []
        data = self.data
        for where, pairs in zip(places, encode_turns(self.backend, rendered)):
            ids, labels, cut = supervised(pairs, data.cutoff_len, data.train_on_prompt, data.mask_history)
            if not (labels != IGNORE).any():
                errors.add(where, "nothing left to train after cutoff" if cut else "no trained tokens",
                           f"cutoff_len {data.cutoff_len}" if cut else "")
                continue
            self.truncated += cut
            out.append({"input_ids": ids, "labels": labels})
        return out

    def _pt(self, batch) -> list[dict]:
        encodings = self.backend.encode_batch([s.text for _, s in batch], add_special_tokens=False)
        cutoff = self.data.cutoff_len
        out = []
        eos = np.asarray([self.eos_id], dtype=np.int32)
        for encoding in encodings:
            self._pt_buffer += [np.asarray(encoding.ids, dtype=np.int32), eos]
            self._pt_len += len(encoding.ids) + 1
            while self._pt_len >= cutoff:
                joined = np.concatenate(self._pt_buffer)
                out.append(self._pt_row(joined[:cutoff]))
                rest = joined[cutoff:]
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

def _schema(columns: list[str], vocab: int):
    import pyarrow as pa

    id_type = pa.uint16() if vocab <= 65536 else pa.int32()
    types = {"input_ids": id_type, "labels": pa.int32(), "position_ids": pa.int32()}
    return pa.schema([(c, pa.list_(types[c])) for c in columns])


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

    def write(self, rows: list[dict]) -> None:
        if not rows:
            return
        pa = self.pa
        arrays = []
        for name, field_ in zip(self.columns, self.schema):
            parts = [r[name] for r in rows]
            lengths = np.fromiter((len(p) for p in parts), dtype=np.int32, count=len(parts))
            offsets = np.zeros(len(parts) + 1, dtype=np.int32)
            np.cumsum(lengths, out=offsets[1:])
            values = np.concatenate(parts).astype(field_.type.value_type.to_pandas_dtype(), copy=False)
            arrays.append(pa.ListArray.from_arrays(pa.array(offsets), pa.array(values)))
        self.writer.write_batch(pa.record_batch(arrays, schema=self.schema))
        self.rows += len(rows)
        self.tokens += int(sum(len(r["input_ids"]) for r in rows))

    def close(self) -> None:
        self.writer.close()
        self.sink.close()


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
            offsets = column.offsets.to_numpy()
            values = column.values.to_numpy(zero_copy_only=False)
            cols[name] = [values[offsets[i]:offsets[i + 1]] for i in range(len(part))]
        yield [{name: cols[name][i] for name in columns} for i in range(len(part))]


# ----------------------------------------------------------------------------- cache key

def _tokenizer_fingerprint(tokenizer) -> str:
    h = hashlib.sha256()
    h.update(tokenizer.backend_tokenizer.to_str().encode())
    h.update(str(getattr(tokenizer, "chat_template", "")).encode())
    h.update(f"{tokenizer.eos_token}|{tokenizer.pad_token}|{tokenizer.bos_token}".encode())
    return h.hexdigest()


def cache_key(data, stage: str, specs: list[DatasetSpec], tokenizer, seed: int) -> str:
    """Hash of the files (path, size, mtime), the data settings, the stage kind, tokenizer and seed."""
    h = hashlib.sha256()
    h.update(CACHE_VERSION.encode())
    h.update(stage_kind(stage).encode())
    settings = data.model_dump(mode="json")
    for key in ("overwrite_cache", "preprocessing_num_workers", "tokenized_path", "streaming", "buffer_size"):
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


# ----------------------------------------------------------------------------- entry point

def _renderer(data, tokenizer):
    if data.template == "auto":
        return AutoRenderer(tokenizer, data.default_system)
    try:
        from .templates import get_template
    except ImportError:
        raise UserError(f"data.template {data.template!r}: named templates are not available yet; "
                        "use auto") from None
    return get_template(data.template).renderer(tokenizer, data.default_system)


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
    key = cache_key(data, stage, specs, tokenizer, seed)
    root = paths.cache_dir() / "data"
    folder = root / key
    if folder.exists() and not data.overwrite_cache:
        prepared = _load(folder)
        log(f"data: {prepared.stats['kept']} samples from the cache ({folder})")
        return prepared
    root.mkdir(parents=True, exist_ok=True)
    work = root / f"{key}.tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        stats = _build(data, stage, kind, specs, tokenizer, seed, work, log)
        (work / "stats.json").write_text(json.dumps(stats, indent=1))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(work, folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _load(folder)


def _build(data, stage, kind, specs, tokenizer, seed, work: Path, log) -> dict:
    started = time.monotonic()
    renderer = _renderer(data, tokenizer) if kind != "pt" else None
    encoder = _Encoder(kind, data, tokenizer, renderer)
    errors = RowErrors()
    counter = [0]
    vocab = len(tokenizer)

    def samples() -> Iterator[tuple[str, Sample]]:
        for spec in specs:
            yield from _spec_samples(spec, stage, data.max_samples, errors, counter)

    encoded_path = work / "encoded.arrow"
    out = _ArrowOut(encoded_path, ["input_ids", "labels"], vocab)
    for batch in _batches(samples(), BATCH_ROWS):
        out.write(encoder.encode(batch, errors))
    out.write(encoder.flush())
    out.close()
    names = [s.name for s in specs]
    if out.rows == 0:
        raise errors.no_valid_samples(names, counter[0])

    table = _read_table(encoded_path)
    n = table.num_rows
    rng = np.random.default_rng(seed)
    n_eval = 0
    if data.val_size:
        n_eval = int(data.val_size) if data.val_size >= 1 else math.ceil(data.val_size * n)
        if n_eval >= n:
            raise UserError(f"data.val_size {data.val_size} leaves no training samples ({n} samples)")
    perm = rng.permutation(n)
    eval_idx = np.sort(perm[:n_eval])
    train_idx = np.sort(perm[n_eval:]) if n_eval else np.arange(n)
    packed = data.packing and kind == "sft"
    train_cols = ["input_ids", "labels", "position_ids"] if packed else ["input_ids", "labels"]
    train_out = _ArrowOut(work / "train.arrow", train_cols, vocab)
    for rows in _rows_of(table, train_idx, ["input_ids", "labels"]):
        if packed:
            rows = [{"input_ids": i, "labels": lab, "position_ids": p} for i, lab, p in
                    pack_rows([r["input_ids"] for r in rows], [r["labels"] for r in rows], data.cutoff_len)]
        train_out.write(rows)
    train_out.close()
    if n_eval:
        eval_out = _ArrowOut(work / "eval.arrow", ["input_ids", "labels"], vocab)
        for rows in _rows_of(table, eval_idx, ["input_ids", "labels"]):
            eval_out.write(rows)
        eval_out.close()
    del table
    encoded_path.unlink()
    elapsed = time.monotonic() - started
    stats = {"samples": counter[0], "kept": n, "truncated": encoder.truncated,
             "dropped": errors.total, "dropped_by_reason": dict(errors.counts),
             "dropped_examples": errors.examples,
             "tokens": train_out.tokens + (eval_out.tokens if n_eval else 0),
             "train_rows": train_out.rows, "eval_rows": n_eval, "packed": packed,
             "seconds": round(elapsed, 2)}
    log(f"data: {', '.join(names)}: {counter[0]} rows → {n} samples "
        f"({encoder.truncated} truncated, {errors.total} dropped) in {elapsed:.1f}s")
    if errors.total:
        log("data: dropped rows:\n" + errors.summary())
    return stats
