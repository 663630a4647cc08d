"""Read rows from local data files: json (array or lines), jsonl, csv, parquet, txt, or a folder of them.

    for where, row in iter_rows(Path("data/alpaca.json")):   # where = "data/alpaca.json row 3"
        ...

Rows come one at a time so that a file larger than memory never has to be loaded whole: a JSON
array is decoded element by element (`json.JSONDecoder.raw_decode` over a sliding buffer), JSON
lines line by line, parquet by record batch. Row numbers are 1-based; for JSON lines and txt files
they are line numbers. A malformed file is a `UserError` naming the file and the row or line.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterator

from ftlab.errors import UserError

EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet", ".txt": "txt",
              ".arrow": "arrow"}
_CHUNK = 1 << 22


def data_files(path: Path) -> list[Path]:
    """The data files of a registered path: the file itself, or a folder's supported files, sorted."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS)
        if not files:
            raise UserError(f"{path}: folder holds no data files ({', '.join(EXTENSIONS)})")
        return files
    if path.suffix.lower() not in EXTENSIONS:
        raise UserError(f"{path}: unsupported file type {path.suffix or '(none)'}; "
                        f"expected one of {', '.join(EXTENSIONS)}")
    return [path]


def _json_array(path: Path, handle) -> Iterator[tuple[int, Any]]:
    decoder = json.JSONDecoder()
    buf = handle.read(_CHUNK)
    pos = 0
    row = 0
    # skip to the opening bracket
    while True:
        while pos < len(buf) and buf[pos].isspace():
            pos += 1
        if pos < len(buf):
            break
        more = handle.read(_CHUNK)
        if not more:
            return
        buf, pos = more, 0
    if buf[pos] != "[":
        raise UserError(f"{path}: expected a JSON array of rows (or one JSON object per line)")
    pos += 1
    eof = False
    while True:
        # skip whitespace and commas
        while True:
            while pos < len(buf) and (buf[pos].isspace() or buf[pos] == ","):
                pos += 1
            if pos < len(buf) or eof:
                break
            buf, pos = handle.read(_CHUNK), 0
            eof = not buf
        if pos >= len(buf):
            raise UserError(f"{path}: unexpected end of file after row {row} (missing ']')")
        if buf[pos] == "]":
            return
        while True:
            try:
                value, end = decoder.raw_decode(buf, pos)
                # a number or literal cut by the buffer end would decode short: make sure it ended
                if end >= len(buf) and not eof:
                    raise ValueError
                break
            except (json.JSONDecodeError, ValueError) as err:
                more = "" if eof else handle.read(_CHUNK)
                if not more:
                    eof = True
                    msg = getattr(err, "msg", "malformed value")
                    raise UserError(f"{path}: row {row + 1}: malformed JSON ({msg})") from None
                buf = buf[pos:] + more
                pos = 0
        row += 1
        yield row, value
        pos = end


def _rows_json(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open("r", encoding="utf-8") as handle:
        head = handle.read(4096)
        stripped = head.lstrip()
        handle.seek(0)
        if stripped.startswith("["):
            yield from _json_array(path, handle)
            return
    yield from _rows_jsonl(path)


def _rows_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    loads = json.loads
    with path.open("r", encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield lineno, loads(line)
            except json.JSONDecodeError as err:
                raise UserError(f"{path}: line {lineno}: malformed JSON ({err.msg})") from None


def _rows_csv(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open("r", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for index, row in enumerate(reader, 1):
            yield index, row


def _rows_txt(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open("r", encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            line = line.rstrip("\n")
            if line.strip():
                yield lineno, {"text": line}


def _rows_parquet(path: Path) -> Iterator[tuple[int, Any]]:
    import pyarrow.parquet as pq

    index = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            index += 1
            yield index, row


def _rows_arrow(path: Path) -> Iterator[tuple[int, Any]]:
    import pyarrow as pa

    with pa.memory_map(str(path)) as source:
        try:
            reader = pa.ipc.open_stream(source)
        except pa.ArrowInvalid:
            reader = pa.ipc.open_file(source)
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        else:
            batches = iter(reader)
        index = 0
        for batch in batches:
            for row in batch.to_pylist():
                index += 1
                yield index, row


_READERS = {"json": _rows_json, "jsonl": _rows_jsonl, "csv": _rows_csv, "txt": _rows_txt,
            "parquet": _rows_parquet, "arrow": _rows_arrow}


def iter_rows(path: Path) -> Iterator[tuple[str, int, Any]]:
    """(file, row number, row) for every row of a registered file or folder."""
    for file in data_files(path):
        reader = _READERS[EXTENSIONS[file.suffix.lower()]]
        try:
            for index, row in reader(file):
                yield str(file), index, row
        except UnicodeDecodeError as err:
            raise UserError(f"{file}: not UTF-8 text ({err.reason} at byte {err.start})") from None
