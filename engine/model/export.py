"""Export a trained run: the adapter folder as it is, or a merged model in bf16/fp16/fp32.

    export("out/run", "exports/merged", merge=True, dtype="bf16")   # run dir, final/ or adapter folder

The result is a plain Hugging Face folder (with the tokenizer) that transformers and peft load
without ftlab. Merging a QLoRA adapter: the base is loaded with the run's bitsandbytes settings
and de-quantized, so the adapter is merged into exactly the weights it was trained against
(not into the original full-precision weights, which would shift every output a little).
The folder is written next to its destination and renamed into place: never half-written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ftlab.errors import UserError

_DTYPES = ("bf16", "fp16", "fp32")


@dataclass
class Source:
    """What an export starts from."""

    folder: Path  # adapter or full model folder
    kind: str  # "adapter" or "model"
    run_config: dict | None  # the run's resolved profile (config.yaml), when known

    @property
    def quantization(self) -> dict | None:
        quant = ((self.run_config or {}).get("method") or {}).get("quantization") or {}
        return quant if quant.get("bits") else None


def find_source(path: str | Path) -> Source:
    """A run dir (its final/), an adapter folder or a model folder."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"{path}: no such run dir, adapter or model folder")
    if (path / "final").is_dir():
        path = path / "final"
    if (path / "adapter_config.json").is_file():
        kind = "adapter"
    elif (path / "config.json").is_file():
        kind = "model"
    else:
        raise UserError(f"{path}: neither a run dir (with final/), an adapter folder (adapter_config.json) "
                        f"nor a model folder (config.json)")
    run_config = None
    for candidate in (path / "config.yaml", path.parent / "config.yaml"):
        if candidate.is_file():
            import yaml

            run_config = yaml.safe_load(candidate.read_text(encoding="utf-8")) or {}
            break
    return Source(path, kind, run_config)


def base_model_folder(source: Source) -> Path:
    """The adapter's base: adapter_config's path if it exists, else the run's model name, resolved."""
    config = json.loads((source.folder / "adapter_config.json").read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    if base and Path(base).is_dir():
        return Path(base)
    name = ((source.run_config or {}).get("model") or {}).get("name_or_path") or base
    if not name:
        raise UserError(f"{source.folder}/adapter_config.json names no base model")
    from ftlab.engine.model.resolve import resolve_model

    return Path(resolve_model(name, log=lambda *_: None))


def _write_atomic_dir(out: Path, fill) -> Path:
    out = out.expanduser().resolve()
    if out.exists() and any(out.iterdir()):
        raise UserError(f"--out {out}: exists and is not empty; choose a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        fill(tmp)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _torch_dtype(name: str):
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def model_class(source: Source):
    """The transformers class to load `source` with: a reward model (stage rm: a one-output score
    head; peft task SEQ_CLS) is a sequence classifier, anything else a causal LM."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    if source.kind == "adapter":
        reward = json.loads((source.folder / "adapter_config.json").read_text()).get("task_type") == "SEQ_CLS"
    else:
        architectures = json.loads((source.folder / "config.json").read_text()).get("architectures") or []
        reward = any(name.endswith("ForSequenceClassification") for name in architectures)
    return AutoModelForSequenceClassification if reward else AutoModelForCausalLM


def load_dequantized_base(folder: Path, quant: dict, auto_class=None, **kwargs):
    """The base as the QLoRA run saw it: quantized with the run's settings, then de-quantized (fp32, CPU)."""
    import torch
    from ftlab.engine.config.schema import MethodConfig
    from ftlab.engine.model.loader import quantization_config
    from transformers import AutoModelForCausalLM

    auto_class = auto_class or AutoModelForCausalLM
    method = MethodConfig(type="lora", quantization=quant)
    config = quantization_config(method, torch.float32)
    if config is None:  # GPTQ/AWQ checkpoints carry their own
        model = auto_class.from_pretrained(folder, dtype=torch.float32, device_map={"": "cpu"}, **kwargs)
    else:
        device = {"": 0} if torch.cuda.is_available() else {"": "cpu"}
        model = auto_class.from_pretrained(folder, dtype=torch.float32, quantization_config=config,
                                           device_map=device, **kwargs)
    model = model.dequantize()
    return model.to("cpu", torch.float32)


def merged_model(source: Source):
    """Base + adapter merged, in fp32 on the CPU (QLoRA: into the de-quantized base)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    base = base_model_folder(source)
    auto_class = model_class(source)
    kwargs = {}
    if auto_class is AutoModelForSequenceClassification:  # rm: the score head comes from the adapter
        from transformers import AutoTokenizer

        kwargs = {"num_labels": 1, "pad_token_id": AutoTokenizer.from_pretrained(source.folder).pad_token_id}
    if source.quantization:
        model = load_dequantized_base(base, source.quantization, auto_class, **kwargs)
    else:
        model = auto_class.from_pretrained(base, dtype=torch.float32, **kwargs)
    vocab = _adapter_vocab(source.folder)
    if vocab and vocab != model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(vocab, mean_resizing=False)  # rows come from the adapter's saved modules
    model = PeftModel.from_pretrained(model, source.folder)
    return model.merge_and_unload()


def _adapter_vocab(folder: Path) -> int | None:
    """Rows of a trained embedding saved with the adapter (a resized vocabulary), if any."""
    from safetensors import safe_open

    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        return None
    with safe_open(str(weights), "pt") as handle:
        for key in handle.keys():  # noqa: SIM118 (safe_open is not a dict)
            if key.endswith("embed_tokens.weight"):
                return handle.get_slice(key).get_shape()[0]
    return None


def _copy_tokenizer(source: Path, dest: Path, fallback: Path | None = None) -> None:
    from transformers import AutoTokenizer

    for folder in (source, fallback):
        if folder is not None and ((folder / "tokenizer_config.json").is_file() or (folder / "tokenizer.json").is_file()):
            AutoTokenizer.from_pretrained(folder).save_pretrained(dest)
            return


def export(path: str | Path, out: str | Path, *, merge: bool = False, dtype: str = "bf16") -> dict:
    """Write the export into `out`; returns a summary (kind, dtype, source, out)."""
    if dtype not in _DTYPES:
        raise UserError(f"--dtype: expected one of {', '.join(_DTYPES)}, got {dtype!r}")
    source = find_source(path)
    if source.kind == "adapter" and not merge:
        def fill(tmp: Path) -> None:
            shutil.copytree(source.folder, tmp, dirs_exist_ok=True)
        kind = "adapter"
    else:
        def fill(tmp: Path) -> None:
            import torch

            if source.kind == "adapter":
                model = merged_model(source)
                fallback = base_model_folder(source)
            else:
                model = model_class(source).from_pretrained(source.folder, dtype=torch.float32)
                fallback = None
            model.to(_torch_dtype(dtype)).save_pretrained(tmp)
            _copy_tokenizer(source.folder, tmp, fallback)
        kind = "merged" if source.kind == "adapter" else "model"
    written = _write_atomic_dir(Path(out), fill)
    return {"kind": kind, "dtype": dtype if kind != "adapter" else None, "source": str(source.folder),
            "out": str(written), "quantized_base": bool(source.quantization)}
