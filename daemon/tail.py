"""Follow a growing file (a job's log.txt or metrics.jsonl) and hand out its new complete lines.

Each read returns `(offset, end, lines)` batches: the byte range the lines cover, so a client
that missed an event can fetch exactly that range again with a `logs` request. A partial last
line waits until its newline arrives. Batches are capped so one event stays small.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import safe_io

BATCH_BYTES = 256 * 1024


class Tail:
    def __init__(self, path: Path, from_end: bool = False, json_lines: bool = False, owner_uid: int | None = None):
        self.path = path
        self.owner_uid = owner_uid
        self.json_lines = json_lines
        self.offset = 0
        self.last_record: dict | None = None
        if from_end:
            try:
                self.offset = path.stat().st_size
            except OSError:
                self.offset = 0

    def read(self) -> list[tuple[int, int, list]]:
        try:
            with safe_io.open_read(self.path, self.owner_uid) as handle:
                if os.fstat(handle.fileno()).st_size < self.offset:  # replaced (overwrite: true)
                    self.offset = 0
                handle.seek(self.offset)
                data = handle.read(16 * BATCH_BYTES)
        except OSError:
            return []
        cut = data.rfind(b"\n")
        if cut < 0:
            return []
        data = data[: cut + 1]
        batches = []
        start = 0
        while start < len(data):
            stop = data.rfind(b"\n", start, start + BATCH_BYTES)
            stop = data.find(b"\n", start) if stop < start else stop
            chunk = data[start: stop + 1]
            lines = chunk.decode("utf-8", errors="replace").splitlines()
            if self.json_lines:
                records = []
                for line in lines:
                    try:
                        records.append(json.loads(line))
                    except ValueError:
                        continue
                if records:
                    self.last_record = records[-1]
                lines = records
            batches.append((self.offset + start, self.offset + stop + 1, lines))
            start = stop + 1
        self.offset += len(data)
        return batches
