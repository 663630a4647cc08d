"""Random-weight models of real architectures, built from a config with a real tokenizer.

Tests train tiny ones (2 layers, hidden 64) of every family; GPU benchmarks build full-size
shapes (Llama-2-7B, Gemma-2B, ...) on the device: throughput and memory do not depend on the
weight values. Nothing is downloaded.

    folder = build_model("tiny-llama", tokenizer_dir, out_dir)   # a Hugging Face folder
"""

from __future__ import annotations

from pathlib import Path

# family → (config class name, kwargs); vocab_size comes from the tokenizer.
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=2048)

SHAPES: dict[str, tuple[str, dict]] = {
    "tiny-llama": ("LlamaConfig", TINY),
    "tiny-qwen2": ("Qwen2Config", TINY),
    "tiny-mistral": ("MistralConfig", dict(TINY, sliding_window=None)),
    "tiny-mixtral": ("MixtralConfig", dict(TINY, num_local_experts=4, num_experts_per_tok=2,
                                           output_router_logits=True)),
    "tiny-gemma": ("GemmaConfig", dict(TINY, head_dim=16)),
    "llama2-7b": ("LlamaConfig", dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                      num_attention_heads=32, num_key_value_heads=32,
                                      max_position_embeddings=4096)),
    "llama2-13b": ("LlamaConfig", dict(hidden_size=5120, intermediate_size=13824, num_hidden_layers=40,
                                       num_attention_heads=40, num_key_value_heads=40,
                                       max_position_embeddings=4096)),
    "gemma-2b": ("GemmaConfig", dict(hidden_size=2048, intermediate_size=16384, num_hidden_layers=18,
                                     num_attention_heads=8, num_key_value_heads=1, head_dim=256,
                                     max_position_embeddings=8192)),
}


def make_config(shape: str, tokenizer):
    import transformers

    class_name, kwargs = SHAPES[shape]
    config_class = getattr(transformers, class_name)
    special = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                   pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                   else tokenizer.eos_token_id)
    return config_class(vocab_size=len(tokenizer), **special, **kwargs)


def build_model(shape: str, tokenizer_dir: str | Path, out_dir: str | Path, seed: int = 0,
                dtype: str = "float32") -> Path:
    """Save a random `shape` model with the tokenizer from `tokenizer_dir` into `out_dir`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir = Path(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(make_config(shape, tokenizer), dtype=getattr(torch, dtype))
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
