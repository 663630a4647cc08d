"""The reference model of dpo and kto: what the policy is measured against.

    ref = reference_model(setup)      # before building the trl trainer (None: trl needs no model)
    drop_fresh_reference_adapter(trainer, profile)   # after: a fresh adapter's frozen copy is dropped
    final_model(trainer)              # before saving: the frozen copy is never exported

- `pref.ref_model` set: that model, loaded like the policy (dtype, quantization), frozen.
- LoRA/DoRA (a peft model): no second model. trl adds a frozen copy of the starting adapter
  named "ref"; for a fresh adapter (zero B, not PiSSA) that copy equals the base, so it is
  dropped and trl switches the adapter off for the reference forward — as LlamaFactory does.
  A continued adapter (model.adapter) or a PiSSA one keeps the copy: switching the adapter off
  would not give the starting policy there.
- full / freeze / GaLore: a frozen second copy of the starting model (with model.adapter merged).
"""

from __future__ import annotations


def _is_peft(model) -> bool:
    return hasattr(model, "peft_config")


def reference_model(setup):
    from ftlab.engine.model.loader import load_model
    from ftlab.engine.model.resolve import resolve_model

    profile = setup.profile
    name = profile.pref.ref_model
    if not name and _is_peft(setup.model):
        return None
    cfg = profile.model.model_copy(update={"gradient_checkpointing": False})
    folder = setup.folder
    if name:
        cfg = cfg.model_copy(update={"name_or_path": name, "adapter": None})
        folder = resolve_model(name, log=lambda *_: None)
    model = load_model(cfg, folder, training=False, method=profile.method, max_length=profile.data.cutoff_len,
                       tokenizer=setup.tokenizer)
    if cfg.adapter:
        from ftlab.engine.train.methods.lora import merge_adapter

        model = merge_adapter(model, cfg.adapter)
    model.requires_grad_(False)
    return model


def drop_fresh_reference_adapter(trainer, profile) -> None:
    """Drop trl's frozen "ref" adapter where switching the adapter off gives the same reference."""
    model = trainer.model
    fresh = not profile.model.adapter and not profile.method.lora.pissa_init
    if _is_peft(model) and "ref" in model.peft_config and fresh:
        model.delete_adapter("ref")


def final_model(trainer):
    """The trained model without trl's frozen "ref" adapter."""
    model = trainer.model
    if _is_peft(model) and "ref" in model.peft_config:
        model.delete_adapter("ref")
    return model


def build_with_reference(trainer_class, setup, batches):
    """A trl trainer that measures against a reference (DPO, KTO), built on ftlab's tokenized rows:
    trl's own tokenization is skipped, no model card is written, the method's dtypes are kept and a
    fresh LoRA's reference adapter copy is dropped (the adapter switched off is the reference)."""
    from . import no_model_card, trainable_dtypes_kept

    class OnFtlabRows(trainer_class):
        create_model_card = no_model_card

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            return dataset

    OnFtlabRows.__name__ = f"Ftlab{trainer_class.__name__}"
    with trainable_dtypes_kept(setup.model):
        trainer = OnFtlabRows(
            model=setup.model,
            ref_model=reference_model(setup),
            args=setup.args,
            data_collator=batches,
            train_dataset=setup.data.train,
            eval_dataset=setup.data.eval,
            processing_class=setup.tokenizer,
            callbacks=setup.callbacks,
            optimizers=(setup.optimizer, None),
        )
    drop_fresh_reference_adapter(trainer, setup.profile)
    return trainer
