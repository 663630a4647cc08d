"""Score multiple-choice prompts by the next-token logits of the choice letters, in batches.

    letters = letter_ids(tokenizer)                       # token ids of "A", "B", "C", "D"
    for done, scored in score_batches(model, prompts, letters, batch_size=8, pad_id=0):
        scored: [(index, logits of A-D)]                  # index into `prompts`

For each prompt the model's logits at the last position are read for the four letter tokens; the
prediction is the letter with the highest logit (softmax over the four gives the probabilities
LlamaFactory reports). Prompts are sorted by length and left-padded, with position ids counted
from each prompt's first real token, so a padded prompt scores as it would alone; only the last
position's logits are computed (`logits_to_keep=1`), so memory does not grow with vocab × length.
"""

from __future__ import annotations

from typing import Iterator

import torch

from ftlab.errors import UserError

from .tasks import CHOICES


def letter_ids(tokenizer) -> list[int]:
    """The token a reply starting with each letter begins with (the letter's own token)."""
    ids = []
    for letter in CHOICES:
        encoded = tokenizer.encode(letter, add_special_tokens=False)
        if not encoded:
            raise UserError(f"the tokenizer encodes the choice letter {letter!r} as no token")
        ids.append(encoded[-1])
    if len(set(ids)) != len(ids):
        raise UserError(f"the tokenizer maps the choice letters A-D to the same token ids {ids}")
    return ids


def left_pad(prompts: list[list[int]], pad_id: int, device) -> dict[str, torch.Tensor]:
    """input_ids, attention_mask and position_ids of left-padded prompts."""
    length = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), length), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, length - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
        mask[row, length - len(prompt):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "position_ids": positions.to(device)}


@torch.inference_mode()
def last_logits(model, prompts: list[list[int]], token_ids: list[int], pad_id: int) -> torch.Tensor:
    """(len(prompts), len(token_ids)) float32 logits of `token_ids` after each prompt."""
    device = next(model.parameters()).device
    batch = left_pad(prompts, pad_id, device)
    out = model(**batch, use_cache=False, logits_to_keep=1)
    return out.logits[:, -1, token_ids].float().cpu()


def score_batches(model, prompts: list[list[int]], token_ids: list[int], batch_size: int,
                  pad_id: int) -> Iterator[tuple[int, list[tuple[int, torch.Tensor]]]]:
    """Yields (batch number, [(prompt index, logits)]) for batches of similar length, longest first
    (an out-of-memory error shows on the first batch)."""
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    for number, start in enumerate(range(0, len(order), batch_size), start=1):
        chunk = order[start:start + batch_size]
        logits = last_logits(model, [prompts[i] for i in chunk], token_ids, pad_id)
        yield number, list(zip(chunk, logits))
