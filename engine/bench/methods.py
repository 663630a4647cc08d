"""Fine-tuning methods benchmark: tokens/s and peak memory of each method on a full-size shape.

The H200 version of the LlamaFactory paper's Table 4 (full, freeze, GaLore, LoRA, QLoRA on
Gemma-2B / Llama-2-7B / Llama-2-13B shapes). A random-weight model of the shape is built on the
device and saved once (throughput and memory do not depend on the weights); each method then runs
in its own process through ftlab's real path — `load_model` (dtype, quantization, liger, gradient
checkpointing), `apply_method`, the runner's `training_arguments`, the Trainer — for `--steps`
optimizer steps of batch × seq random tokens (stage pt: every token is a label).

    python -m ftlab.engine.bench.methods --shape llama2-7b --methods lora,qlora,freeze,full,galore \\
        --steps 10 --out results.json
    # CPU smoke run of the same code
    python -m ftlab.engine.bench.methods --shape tiny-llama --methods lora,freeze --steps 3 --batch 2 --seq 64

Rates: tokens per second over the steps after the first two (warm-up excluded). Memory: the
device's used memory sampled every 20 ms through NVML, minus what was used before the process
started (the nvidia-smi figure: allocator cache and CUDA context included); also torch's peak
reserved. Method names: full, freeze (last 3 layers), lora (r16, alpha 32, all linear layers),
dora, qlora (4-bit nf4, double quantization), qlora8 (LLM.int8), galore (rank 16), and variants
`lora-noliger`, `lora-nockpt`, `lora-bf16` (adapters kept in bf16).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

VOCAB = 49152  # SmolLM2's tokenizer, as in the LlamaFactory anchors

METHODS: dict[str, dict] = {
    "full": {"method": {"type": "full"}},
    "freeze": {"method": {"type": "freeze", "freeze": {"trainable_layers": 3}}},
    "lora": {"method": {"type": "lora", "lora": {"rank": 16, "alpha": 32}}},
    "dora": {"method": {"type": "dora", "lora": {"rank": 16, "alpha": 32}}},
    "qlora": {"method": {"type": "lora", "lora": {"rank": 16, "alpha": 32},
                         "quantization": {"bits": 4, "type": "nf4", "double_quant": True}}},
    "qlora8": {"method": {"type": "lora", "lora": {"rank": 16, "alpha": 32}, "quantization": {"bits": 8}}},
    "galore": {"method": {"type": "galore", "galore": {"rank": 16, "update_interval": 200, "scale": 2.0}}},
    "lora-noliger": {"method": {"type": "lora", "lora": {"rank": 16, "alpha": 32}},
                     "model": {"tricks": {"liger_kernel": "off"}}},
    "lora-nockpt": {"method": {"type": "lora", "lora": {"rank": 16, "alpha": 32}},
                    "model": {"gradient_checkpointing": False}},
    "lora-bf16": {"method": {"type": "lora", "lora": {"rank": 16, "alpha": 32, "upcast_adapters": False}}},
}


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def build_profile(method: str, args):
    from ftlab.engine.config import Profile

    if method not in METHODS:
        raise SystemExit(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    sections = {"stage": "pt",
                "model": {"gradient_checkpointing": True, "dtype": args.dtype},
                "data": {"cutoff_len": args.seq},
                "train": {"batch_size": args.batch, "max_steps": args.steps, "learning_rate": 1e-5,
                          "lr_scheduler": "constant", "logging_steps": 1, "precision": args.precision}}
    sections = _merge(sections, METHODS[method])
    return Profile(**sections)


# ---------------------------------------------------------------- the model


class _Vocab:
    """What synthetic.make_config reads from a tokenizer."""

    bos_token_id, eos_token_id, pad_token_id = 1, 2, 2

    def __len__(self):
        return VOCAB


def build_folder(shape: str, root: Path) -> Path:
    """Save a random `shape` model (bf16) under root/shape once; returns the folder."""
    folder = root / shape
    if (folder / "config.json").is_file():
        return folder
    import torch
    from ftlab.engine.model.synthetic import make_config
    from transformers import AutoModelForCausalLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    started = time.perf_counter()
    with torch.device(device):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(make_config(shape, _Vocab()), dtype=dtype)
    tmp = Path(tempfile.mkdtemp(prefix=f".{shape}.", dir=root))
    model.save_pretrained(tmp)
    os.replace(tmp, folder)
    del model
    print(f"built {shape} in {time.perf_counter() - started:.0f} s -> {folder}", file=sys.stderr)
    return folder


# ---------------------------------------------------------------- memory


class PeakSampler:
    """Samples the device's used memory (the nvidia-smi figure) every 20 ms: through NVML when
    nvidia-ml-py is installed, else by polling `nvidia-smi` (every ~100 ms)."""

    def __init__(self, index: int = 0):
        self.index = index
        self.peak = self.baseline = 0
        self._stop = threading.Event()
        self._read = self._nvml_reader() or self._smi_reader()
        if self._read is not None:
            self.baseline = self._read()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _nvml_reader(self):
        try:
            import pynvml
        except ImportError:  # no nvidia-ml-py
            return None
        try:
            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(self.index)
            return lambda: pynvml.nvmlDeviceGetMemoryInfo(handle).used
        except (pynvml.NVMLError, OSError):  # no driver library, or no such device
            return None

    def _smi_reader(self):
        import shutil

        if shutil.which("nvidia-smi") is None:
            return None
        command = ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", str(self.index)]

        def read() -> int:
            return int(subprocess.run(command, capture_output=True, text=True, check=False).stdout.strip()) * 2**20

        try:
            read()
        except (ValueError, OSError):
            return None
        return read

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._read())
            self._stop.wait(0.02)

    def __enter__(self):
        if self._read is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._read is not None:
            self._thread.join()
            self.peak = max(self.peak, self._read())

    @property
    def peak_gib(self) -> float | None:
        return None if self._read is None else (self.peak - self.baseline) / 2**30


# ---------------------------------------------------------------- one method (child process)


def run_method(method: str, folder: Path, args) -> dict:
    import torch
    from ftlab.engine.model.loader import load_model
    from ftlab.engine.train.methods import apply_method, make_optimizer, trainable_summary, training_overrides
    from ftlab.engine.train.runner import _precision, training_arguments
    from transformers import Trainer, TrainerCallback

    profile = build_profile(method, args)
    cuda = torch.cuda.is_available()

    class Clock(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []

        def on_step_end(self, targs, state, control, **kwargs):
            if cuda:
                torch.cuda.synchronize()
            self.times.append(time.perf_counter())

    gen = torch.Generator().manual_seed(0)
    rows = args.batch * args.steps
    ids = torch.randint(3, VOCAB, (rows, args.seq), generator=gen)
    data = [{"input_ids": row, "labels": row} for row in ids]

    with PeakSampler() as sampler, tempfile.TemporaryDirectory() as run_dir:
        started = time.perf_counter()
        model = load_model(profile.model, folder, method=profile.method, max_length=args.seq)
        model = apply_method(model, profile.method, autocast=any(_precision(profile.train.precision)))
        load_s = time.perf_counter() - started
        trainable, total = trainable_summary(model)
        targs = training_arguments(profile, Path(run_dir), training_overrides(profile.method, profile.model, model))
        targs.include_num_input_tokens_seen = "no"
        clock = Clock()
        trainer = Trainer(model=model, args=targs, train_dataset=data, callbacks=[clock],
                          optimizers=(make_optimizer(model, profile.method, targs), None))
        t0 = time.perf_counter()
        output = trainer.train()
        wall = time.perf_counter() - t0
    steady = clock.times[2:] if len(clock.times) > 3 else clock.times
    tokens = args.batch * args.seq
    rate = tokens * (len(steady) - 1) / (steady[-1] - steady[0]) if len(steady) > 1 else tokens * args.steps / wall
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    norm = getattr(base.model, "norm", None)
    norm_class = norm._get_name() if norm is not None else None  # LigerRMSNorm when liger patched it
    from ftlab.engine.model.estimate import estimate, read_shape

    est = estimate(profile, read_shape(folder))
    return {
        "method": method, "tokens_per_s": round(rate, 1), "steps": trainer.state.global_step,
        "final_loss": output.training_loss, "load_s": round(load_s, 1), "train_s": round(wall, 1),
        "peak_gib_nvml": None if sampler.peak_gib is None else round(sampler.peak_gib, 2),
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2) if cuda else None,
        "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "estimate_gib": round(est.total_gib, 2), "trainable": trainable, "params": total,
        "norm_class": norm_class, "profile": profile.model_dump(mode="json", include={"model", "method"}),
    }


# ---------------------------------------------------------------- driver


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="llama2-7b", help="llama2-7b, llama2-13b, gemma-2b, tiny-llama, ...")
    parser.add_argument("--methods", default="lora,qlora,freeze,full,galore",
                        help=f"comma list of: {', '.join(METHODS)}")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--dtype", default="auto", choices=("auto", "bf16", "fp16", "fp32"))
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp16", "fp32"))
    parser.add_argument("--models-dir", default=os.environ.get("FTLAB_BENCH_MODELS", "/tmp/ftlab-bench-models"),
                        help="where the random model is saved (reused between runs)")
    parser.add_argument("--out", help="write the results as JSON here (rewritten after each method)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds one method may run before it is stopped and recorded as timed out")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: run one method, print one JSON line
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)  # internal
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    root = Path(args.models_dir)
    root.mkdir(parents=True, exist_ok=True)
    if args.child:
        result = run_method(args.child, root / args.shape, args)
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    if args.build_only:
        build_folder(args.shape, root)
        return 0
    # built in a child process, so this one never holds a CUDA context or cached memory
    subprocess.run([sys.executable, "-m", "ftlab.engine.bench.methods", "--build-only", "--shape", args.shape,
                    "--models-dir", str(root)], check=True)
    setup = {"shape": args.shape, "batch": args.batch, "seq": args.seq, "steps": args.steps,
             "command": " ".join(["python -m ftlab.engine.bench.methods"] + (argv or sys.argv[1:])),
             "device": _device_name(), "date": time.strftime("%Y-%m-%d"), "versions": _versions()}
    results = []
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        command = [sys.executable, "-m", "ftlab.engine.bench.methods", "--child", method, "--shape", args.shape,
                   "--steps", str(args.steps), "--batch", str(args.batch), "--seq", str(args.seq),
                   "--dtype", args.dtype, "--precision", args.precision, "--models-dir", str(root)]
        started = time.perf_counter()
        try:
            proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=args.timeout)
        except subprocess.TimeoutExpired as exc:
            proc = subprocess.CompletedProcess(command, -9, _text(exc.stdout),
                                               _text(exc.stderr) + f"\ntimed out after {args.timeout:.0f} s")
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            result = {"method": method, "error": (proc.stderr or proc.stdout)[-3000:], "returncode": proc.returncode}
        else:
            result = json.loads(lines[-1][len("RESULT "):])
        result["wall_s"] = round(time.perf_counter() - started, 1)
        results.append(result)
        if "error" in result:
            print(f"{method:<14} FAILED (rc {proc.returncode}): {result['error'][-400:]}", flush=True)
        else:
            print(f"{method:<14} {result['tokens_per_s']:>10,.0f} tok/s  peak {result['peak_gib_nvml']} GiB (nvml), "
                  f"{result['peak_reserved_gib']} GiB reserved, estimate {result['estimate_gib']} GiB, "
                  f"loss {result['final_loss']:.3f}, norm {result['norm_class']}", flush=True)
        if args.out:  # after every method, so a run cut short still leaves what it measured
            _write_json(Path(args.out), {"setup": setup, "results": results})
    return 0 if all("error" not in r for r in results) else 1


def _text(data) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _device_name() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "cpu"


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "peft", "bitsandbytes", "liger-kernel", "galore-torch", "triton"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


if __name__ == "__main__":
    sys.exit(main())
