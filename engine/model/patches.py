"""The ONE module that reaches into third-party internals; each use is gated on the library version
and pinned by a test (tests/methods/test_patches.py) that fails when the library changes.

S² attention (shift short attention, LongLoRA, arXiv 2309.12307): while training, the sequence is
cut into groups and each group attends only to itself, causally; half of the heads see the groups
shifted by half a group, so information still flows between neighbouring groups. It is registered
as an attention implementation through transformers' `AttentionInterface` (a public registry), but
it relies on the attention-function contract of transformers 5 — query/key/value shaped
(batch, heads, seq, head_dim), the output returned as (batch, seq, heads, head_dim) — hence the gate.

    attention = shift_attention(config, "sdpa", group_ratio=0.25)   # → "ftlab_s2"
    model = AutoModelForCausalLM.from_pretrained(..., attn_implementation=attention)

With one group (ratio 1, or a sequence shorter than two groups) and in eval mode it is exactly the
base attention. Like LongLoRA, the groups ignore the padding mask (pad on the right; padded
positions carry no loss).
"""

from __future__ import annotations

import math

import torch

from ftlab.errors import UserError

S2_NAME = "ftlab_s2"
# transformers releases whose attention-function contract this module was written against.
TRANSFORMERS_RANGE = ((5, 0), (6, 0))
# Model families whose attention goes through the registry and whose heads may be shifted.
S2_MODEL_TYPES = ("llama",)



def _version() -> tuple[int, int]:
    import transformers

    major, minor = transformers.__version__.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def check_transformers() -> None:
    low, high = TRANSFORMERS_RANGE
    if not low <= _version() < high:
        import transformers

        raise UserError(f"model.tricks.shift_attn: written for transformers {low[0]}.x; this is "
                        f"{transformers.__version__} (see ftlab/engine/model/patches.py)")


def _repeat_kv(x: torch.Tensor, heads: int) -> torch.Tensor:
    if x.shape[1] == heads:
        return x
    return x.repeat_interleave(heads // x.shape[1], dim=1)


def _shift(x: torch.Tensor, amount: int) -> torch.Tensor:
    """Roll the second half of the heads by `amount` positions along the sequence."""
    half = x.shape[1] // 2
    return torch.cat([x[:, :half], x[:, half:].roll(amount, dims=2)], dim=1)


def s2_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
                 is_causal=None, **kwargs):
    """Shift short attention over (batch, heads, seq, dim) tensors; returns (batch, seq, heads, dim)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    ratio = getattr(module, "ftlab_s2_ratio", None) or getattr(module.config, "ftlab_s2_ratio", 1.0)
    batch, heads, length, dim = query.shape
    groups = max(1, round(1 / ratio))
    if not module.training or groups == 1 or length < 2 * groups or key.shape[2] != length:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, is_causal=is_causal, **kwargs)
    size = math.ceil(length / groups)
    padded = size * groups
    key, value = _repeat_kv(key, heads), _repeat_kv(value, heads)

    def split(x):
        if padded != length:
            x = torch.nn.functional.pad(x, (0, 0, 0, padded - length))
        x = _shift(x, -(size // 2))
        return x.reshape(batch, heads, groups, size, dim).transpose(1, 2).reshape(batch * groups, heads, size, dim)

    out = torch.nn.functional.scaled_dot_product_attention(
        split(query), split(key), split(value), is_causal=True, scale=scaling,
        dropout_p=dropout if module.training else 0.0)
    out = out.reshape(batch, groups, heads, size, dim).transpose(1, 2).reshape(batch, heads, padded, dim)
    out = _shift(out, size // 2)[:, :, :length]
    return out.transpose(1, 2).contiguous(), None


def register_s2() -> str:
    """Register S² with transformers' attention and mask registries (idempotent); returns its name."""
    check_transformers()
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(S2_NAME, s2_attention)
    AttentionMaskInterface.register(S2_NAME, sdpa_mask)
    return S2_NAME


def shift_attention(config, base: str, group_ratio: float) -> str:
    """Switch `config` to S² attention with groups of `group_ratio` × the sequence; returns the name to load with."""
    if config.model_type not in S2_MODEL_TYPES:
        raise UserError(f"model.tricks.shift_attn: S² attention is available for the Llama family "
                        f"({', '.join(S2_MODEL_TYPES)}), not {config.model_type}")
    if base not in ("sdpa", "eager"):
        raise UserError(f"model.tricks.shift_attn: S² attention runs on sdpa; "
                        f"model.attn_implementation {base} cannot be combined with it")
    config.ftlab_s2_ratio = group_ratio
    return register_s2()
