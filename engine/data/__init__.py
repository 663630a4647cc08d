"""ftlab.engine.data: datasets from a dataset_info.json registry, tokenized for a training stage.

    from ftlab.engine.data import prepare_dataset, make_collator
    prepared = prepare_dataset(profile.data, profile.stage, tokenizer, seed=42)
    loader = DataLoader(prepared.train, batch_size=4, collate_fn=make_collator(profile.stage, tokenizer))

Modules: registry (dataset_info.json), readers (files), formats (rows → samples), render and
templates (chat templates), encode (tokens, masks, truncation), packing, collate, pipeline
(batches, cache, splits), errors (dropped rows by reason).
"""

from .collate import make_collator
from .pipeline import PreparedData, prepare_dataset

__all__ = ["PreparedData", "make_collator", "prepare_dataset"]
