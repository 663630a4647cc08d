"""Build the engine a command asked for: `--backend hf` (default) or `--backend vllm`."""

from __future__ import annotations

from ftlab.errors import UserError

from .source import ModelSource

BACKENDS = ("hf", "vllm")


def build_engine(source: ModelSource, backend: str = "hf", *, device: str = "auto", dtype: str = "auto",
                 max_batch: int = 16, max_len: int | None = None, cuda_graphs: bool | None = None,
                 compile: bool = False, log=print):
    """A started engine holding `source`; `cuda_graphs=None` means on when the device is CUDA."""
    if backend == "vllm":
        from .vllm_engine import VLLMEngine, require_vllm

        require_vllm()
        return VLLMEngine(source, dtype=dtype, max_batch=max_batch, max_len=max_len, log=log)
    if backend != "hf":
        raise UserError(f"--backend {backend}: expected one of {', '.join(BACKENDS)}")
    from .hf_engine import HFEngine
    from .loader import load

    loaded = load(source, device=device, dtype=dtype)
    graphs = loaded.device.type == "cuda" if cuda_graphs is None else cuda_graphs
    return HFEngine(loaded.model, loaded.tokenizer, source.model_id, max_batch=max_batch, max_len=max_len,
                    cuda_graphs=graphs, compile=compile, log=log)
