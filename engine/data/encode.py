"""Tokenize rendered turns in batches and build input_ids/labels with LlamaFactory's truncation.

    pairs = encode_turns(backend, [turns, ...])          # per sample: [(src_ids, tgt_ids, n_train), ...]
    ids, labels, truncated = supervised(pairs[0], cutoff_len=1024)

Each conversation's full text is tokenized once (the fast tokenizer's `encode_batch`, in Rust,
with character offsets), so the ids are exactly those of `apply_chat_template`; the offsets then
cut the ids into per-turn prompt (source) and response (target) pieces. Truncation splits the
remaining budget between source and target turn by turn like LlamaFactory's `infer_seqlen`.
"""

from __future__ import annotations

import numpy as np

IGNORE = -100


def infer_seqlen(source_len: int, target_len: int, cutoff_len: int) -> tuple[int, int]:
    """How many source and target tokens to keep within `cutoff_len` (LlamaFactory's rule)."""
    if target_len * 2 < cutoff_len:
        max_target_len = cutoff_len
    elif source_len * 2 < cutoff_len:
        max_target_len = cutoff_len - source_len
    else:
        max_target_len = int(cutoff_len * (target_len / (source_len + target_len)))
    new_target_len = min(max_target_len, target_len)
    max_source_len = max(cutoff_len - new_target_len, 0)
    new_source_len = min(max_source_len, source_len)
    return new_source_len, new_target_len


def encode_texts(backend, texts: list[str]):
    """Batch-encode without special tokens (templates write their own BOS)."""
    return backend.encode_batch(texts, add_special_tokens=False)


def turn_texts(rendered: list[list]) -> tuple[list[str], list[list[tuple[int, int, int]]]]:
    """Full texts and, per turn, (response start, trained end, response end) in characters."""
    texts = []
    bounds = []
    for turns in rendered:
        parts = []
        marks = []
        pos = 0
        for turn in turns:
            pos += len(turn.prompt)
            start = pos
            pos += len(turn.response)
            marks.append((start, start + turn.train_chars, pos))
            parts.append(turn.prompt)
            parts.append(turn.response)
        texts.append("".join(parts))
        bounds.append(marks)
    return texts, bounds


def _first_token_at(encoding, pos: int, n_tokens: int, text_len: int) -> int | None:
    """Index of the first token that starts at or after character `pos` (None: ask the offsets)."""
    if pos >= text_len:
        return n_tokens
    index = encoding.char_to_token(pos)
    if index is None:
        return None
    if encoding.token_to_chars(index)[0] < pos:
        index += 1
    return index


def split_encodings(encodings, bounds, texts) -> list[list[tuple[np.ndarray, np.ndarray, int]]]:
    """Cut each encoding into per-turn (source ids, target ids, trained target ids) by character marks."""
    out = []
    for encoding, marks, text in zip(encodings, bounds, texts):
        ids = np.asarray(encoding.ids, dtype=np.int32)
        n = len(ids)
        flat = [_first_token_at(encoding, c, n, len(text)) for mark in marks for c in mark]
        if any(c is None for c in flat):  # characters no token covers (normalizers): use all offsets
            starts = np.fromiter((o[0] for o in encoding.offsets), dtype=np.int64, count=n)
            flat = np.searchsorted(starts, np.asarray(marks, dtype=np.int64).reshape(-1), side="left").tolist()
        pairs = []
        prev = 0
        for k in range(0, len(flat), 3):
            r_start, t_end, r_end = flat[k:k + 3]
            pairs.append((ids[prev:r_start], ids[r_start:r_end], t_end - r_start))
            prev = r_end
        if prev < n and pairs:  # text after the last reply (none for usual templates)
            src, tgt, k = pairs[-1]
            pairs[-1] = (src, np.concatenate([tgt, ids[prev:]]), k)
        out.append(pairs)
    return out


def encode_turns(backend, rendered: list[list]) -> list[list[tuple[np.ndarray, np.ndarray, int]]]:
    """Per sample, per turn: (source ids, target ids, number of leading target ids trained)."""
    texts, bounds = turn_texts(rendered)
    return split_encodings(encode_texts(backend, texts), bounds, texts)


def encode_turns_lazy(backend, rendered: list[list], cutoff_len: int, reserve: int = 0):
    """Like `encode_turns`, but turn by turn, stopping for each sample once its budget is spent.

    Exact only when every turn's prompt starts with a special token (the tokenizer splits the text
    there anyway); the caller checks that. Returns (pairs per sample, whether turns were skipped).
    """
    n = len(rendered)
    pairs: list[list] = [[] for _ in range(n)]
    totals = [reserve] * n
    skipped = [False] * n
    alive = list(range(n))
    turn = 0
    while alive:
        texts, bounds, which = [], [], []
        for i in alive:
            turns = rendered[i]
            if turn >= len(turns):
                continue
            if totals[i] >= cutoff_len:
                skipped[i] = True
                continue
            t = turns[turn]
            texts.append(t.prompt + t.response)
            start = len(t.prompt)
            bounds.append([(start, start + t.train_chars, start + len(t.response))])
            which.append(i)
        if not texts:
            break
        for i, encoded in zip(which, split_encodings(encode_texts(backend, texts), bounds, texts)):
            src, tgt, k = encoded[0]
            pairs[i].append((src, tgt, k))
            s_len, t_len = infer_seqlen(len(src), len(tgt), cutoff_len - totals[i])
            totals[i] += s_len + t_len
        alive = which
        turn += 1
    return pairs, skipped


def supervised(pairs, cutoff_len: int, train_on_prompt: bool = False, mask_history: bool = False,
               efficient_eos: int | None = None) -> tuple[np.ndarray, np.ndarray, bool]:
    """input_ids, labels and whether anything was cut, for one conversation.

    `efficient_eos` (an EOS id, for templates without an end-of-turn token) labels the first
    prompt token after each reply with EOS and ends the sequence with one EOS, as LlamaFactory does.
    """
    total = 1 if efficient_eos is not None else 0
    pieces_ids: list[np.ndarray] = []
    pieces_labels: list[np.ndarray] = []
    order = list(reversed(pairs)) if mask_history else pairs
    truncated = False
    for index, (src, tgt, n_train) in enumerate(order):
        if total >= cutoff_len:
            truncated = True
            break
        s_len, t_len = infer_seqlen(len(src), len(tgt), cutoff_len - total)
        if s_len < len(src) or t_len < len(tgt):
            truncated = True
        src = src[:s_len]
        tgt_full = tgt
        tgt = tgt[:t_len]
        total += s_len + t_len
        src_labels = src.copy() if train_on_prompt else np.full(s_len, IGNORE, dtype=np.int32)
        if efficient_eos is not None and not train_on_prompt and s_len:
            src_labels[0] = efficient_eos
        if mask_history and index != 0:
            tgt_labels = np.full(t_len, IGNORE, dtype=np.int32)
        else:
            tgt_labels = tgt.copy()
            if n_train < len(tgt_full):
                tgt_labels[n_train:] = IGNORE
        if mask_history:
            pieces_ids[:0] = [src, tgt]
            pieces_labels[:0] = [src_labels, tgt_labels]
        else:
            pieces_ids += [src, tgt]
            pieces_labels += [src_labels, tgt_labels]
    if efficient_eos is not None:
        eos = np.asarray([efficient_eos], dtype=np.int32)
        pieces_ids.append(eos)
        pieces_labels.append(eos)
    if not pieces_ids:
        return np.zeros(0, np.int32), np.zeros(0, np.int32), truncated
    return np.concatenate(pieces_ids), np.concatenate(pieces_labels), truncated


def masked_target(tgt: np.ndarray, n_train: int, keep: int) -> np.ndarray:
    """Labels of a reply truncated to `keep` tokens, -100 after its first `n_train` (after the stop)."""
    labels = tgt[:keep].copy()
    if n_train < keep:
        labels[n_train:] = IGNORE
    return labels
