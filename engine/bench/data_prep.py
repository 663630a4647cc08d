"""Benchmark: data preprocessing throughput (tokenize + mask + pack), for docs/bench/data.md.

    python3 /work/shared/bench/gen_sharegpt.py /tmp/synth 100000 1
    python -m ftlab.engine.bench.data_prep /tmp/synth [--cutoff 1024] [--no-packing] [--max-samples N]

Runs `prepare_dataset` (stage sft, template auto = SmolLM2's ChatML, packing on by default) on the
registered dataset `synth` with a fresh cache folder, and prints one JSON line: samples/s and kept
tokens/s after the fixed start-up (imports, tokenizer), CPU seconds used, peak RSS of the process,
the size of the cache it wrote, and the machine load while it ran (the cores may be shared). Pin
it to two cores with `taskset -c 0,1` on a bigger machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir")
    parser.add_argument("--cutoff", type=int, default=1024)
    parser.add_argument("--no-packing", action="store_true")
    parser.add_argument("--max-samples", type=int, default=None)
    parser.add_argument("--template", default="auto")
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the embedded model's)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="ftlab-bench-"))
    from ftlab import paths

    models = paths.models_dir()
    (home / "cache").mkdir(parents=True)
    (home / "cache" / "models").symlink_to(models, target_is_directory=True)
    os.environ["FTLAB_HOME"] = str(home)

    started = time.monotonic()
    from ftlab.engine.config.schema import DataConfig
    from ftlab.engine.data import prepare_dataset
    from ftlab.engine.model.loader import load_tokenizer

    if args.tokenizer:
        tokenizer = load_tokenizer(args.tokenizer)
    else:
        from ftlab.engine.model.resolve import resolve_model

        tokenizer = load_tokenizer(resolve_model("smollm2-135m-instruct", log=lambda *_: None))
    startup = time.monotonic() - started
    data = DataConfig(dataset=["synth"], dataset_dir=args.data_dir, cutoff_len=args.cutoff,
                      packing=not args.no_packing, max_samples=args.max_samples, template=args.template)
    load_before = os.getloadavg()[0]
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    prepared = prepare_dataset(data, "sft", tokenizer, log=lambda *_: None)
    elapsed = time.monotonic() - t0
    load_after = os.getloadavg()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    stats = prepared.stats
    cache = _du(home / "cache" / "data")
    result = {
        "samples": stats["samples"], "kept": stats["kept"], "truncated": stats["truncated"],
        "dropped": stats["dropped"], "train_rows": stats["train_rows"], "packed": stats["packed"],
        "cutoff_len": args.cutoff, "template": stats["template"],
        "startup_s": round(startup, 1), "seconds": round(elapsed, 1),
        "samples_per_s": round(stats["samples"] / elapsed, 1),
        "kept_tokens_per_s": round(stats["tokens"] / elapsed),
        "cpu_s": round(cpu_s, 1), "samples_per_cpu_s": round(stats["samples"] / cpu_s, 1),
        "cores_used": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "cache_gb": round(cache / 1e9, 3),
        "loadavg_1m_before_after": [round(load_before, 2), round(load_after[0], 2)],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
