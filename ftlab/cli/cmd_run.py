"""Run a profile in the foreground, without the daemon (also what ftd runs for each job).

    ftctl run profiles/demo_lora_sft.yaml --set train.max_steps=10

Writes into the run dir (output.dir, or --output-dir): config.yaml, log.txt, metrics.jsonl,
checkpoint-N/, final/ (the adapter or model, Hugging Face format) and exit.json. Exit code 0 on
success, 2 on a problem with the input, 1 on a failure, 143 after a warm stop (SIGTERM).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

from ftlab.errors import UserError


def add_arguments(parser) -> None:
    parser.add_argument("profile", help="YAML profile (ftlab or LlamaFactory format)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key, e.g. --set train.max_steps=10 (repeatable)")
    parser.add_argument("--output-dir", help="run dir (default: the profile's output.dir)")
    parser.add_argument("--log", default=None, metavar="FILE",
                        help="also write the console output to FILE (default: RUN_DIR/log.txt; '-' for none)")
    parser.add_argument("--progress", choices=["auto", "rich", "plain", "none"], default="auto",
                        help="progress display: a live bar on a terminal, plain lines otherwise")
    parser.add_argument("--json", action="store_true", help="print the final summary as JSON")


class _Tee:
    """Copies a text stream into a log file (the console stays as it is)."""

    def __init__(self, stream, log):
        self._stream, self._log = stream, log

    def write(self, text):
        self._log.write(text)
        self._log.flush()
        return self._stream.write(text)

    def flush(self):
        self._stream.flush()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _write_exit(run_dir: Path, status: str, returncode: int, error: str | None) -> None:
    record = {"status": status, "returncode": returncode, "error": error, "ts": round(time.time(), 3),
              "pid": os.getpid()}
    tmp = run_dir / ".exit.json.tmp"
    tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")
    os.replace(tmp, run_dir / "exit.json")


def run(args) -> int:
    from ftlab.engine.config import load_profile

    loaded = load_profile(args.profile, args.sets)  # bad input: exit 2 before anything is written
    run_dir = Path(args.output_dir or loaded.profile.output.dir).resolve()
    if args.output_dir:
        loaded.profile.output.dir = str(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = None if args.log == "-" else Path(args.log) if args.log else run_dir / "log.txt"
    log_file = open(log_path, "a", encoding="utf-8") if log_path else None
    if log_file:
        sys.stdout, sys.stderr = _Tee(sys.stdout, log_file), _Tee(sys.stderr, log_file)

    from ftlab.engine.train.progress import ProgressDisplay

    display = ProgressDisplay(args.progress)
    try:
        return _train(loaded, run_dir, display, args.json)
    finally:
        if log_file:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
            log_file.close()


def _train(loaded, run_dir: Path, display, as_json: bool) -> int:
    from ftlab.engine.train.runner import Cancelled, run_profile

    try:
        result = run_profile(loaded, run_dir, display)
    except UserError as err:
        _write_exit(run_dir, "failed", err.exit_code, str(err))
        raise
    except Cancelled as err:
        print(f"cancelled: {err}", file=sys.stderr)
        _write_exit(run_dir, "cancelled", 143, str(err))
        return 143
    except BaseException as err:  # noqa: BLE001 — any failure is recorded, then reported
        code = err.code if isinstance(err, SystemExit) and isinstance(err.code, int) else 1
        status = "cancelled" if isinstance(err, (SystemExit, KeyboardInterrupt)) else "failed"
        if status == "failed":
            traceback.print_exc()
        _write_exit(run_dir, status, code, f"{type(err).__name__}: {err}")
        return code if code else 1
    _write_exit(run_dir, "succeeded", 0, None)
    summary = {"run_dir": str(run_dir), "final": str(result.final_dir), **result.summary}
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
    elif "done" in result.summary:  # eval / predict: their own one-line summary
        display.print(result.summary["done"])
    else:
        loss = f"{result.train_loss:.4f}" if result.train_loss is not None else "-"
        display.print(f"done: {result.steps} steps in {result.runtime_s:.1f}s, train loss {loss}, "
                      f"peak memory {result.summary['peak_mem_gib']:.2f} GiB → {result.final_dir}")
    return 0
