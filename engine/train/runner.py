"""Run one profile: the flat orchestrator behind `ftctl run` and every ftd training job.

    run dir ← config.yaml
    model   ← resolve (embedded → folder → hub), tokenizer
    data    ← ftlab.engine.data.prepare_dataset (registry, template, masks)
    method  ← full / LoRA (engine.train.methods)
    train   ← the stage's Trainer (engine.train.stages: transformers or trl) + metrics.jsonl + progress
              + warm stop on SIGTERM
    save    ← final/ written to a temp folder, then renamed (never half-written)

The caller (ftlab.cli.cmd_run) owns log.txt and exit.json, so they are written whatever fails.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ftlab.engine.config import LoadedProfile, Profile, dump_profile
from ftlab.errors import UserError

class Cancelled(Exception):
    """The run was stopped by a signal after saving a checkpoint."""


@dataclass
class RunResult:
    run_dir: Path
    final_dir: Path | None
    steps: int
    train_loss: float | None
    runtime_s: float
    summary: dict = field(default_factory=dict)


def check_run_dir(run_dir: Path, profile: Profile) -> None:
    """Refuse to overwrite an earlier run's results unless asked to (overwrite or resume)."""
    finished = (run_dir / "final").exists() or any(run_dir.glob("checkpoint-*"))
    if finished and not profile.output.overwrite and not profile.train.resume_from_checkpoint:
        raise UserError(f"output.dir {run_dir} already holds a run (final/ or checkpoints); set "
                        f"output.overwrite: true, pick another output.dir, or resume with "
                        f"train.resume_from_checkpoint: last")
    if finished and profile.output.overwrite and not profile.train.resume_from_checkpoint:
        shutil.rmtree(run_dir / "final", ignore_errors=True)
        for old in run_dir.glob("checkpoint-*"):
            shutil.rmtree(old, ignore_errors=True)
        for name in ("metrics.jsonl", "exit.json"):
            (run_dir / name).unlink(missing_ok=True)


def write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _precision(name: str) -> tuple[bool, bool]:
    """(bf16, fp16) flags for the Trainer."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            name = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            name = "fp32"
    if name in ("bf16", "fp16") and not torch.cuda.is_available():
        if name == "fp16":
            raise UserError("train.precision: fp16 mixed precision needs a GPU; use fp32 or bf16 on the CPU")
    return name == "bf16", name == "fp16"


def _complete(checkpoint: Path) -> bool:
    """The Trainer writes trainer_state.json last: a checkpoint without it was cut off mid-save."""
    return (checkpoint / "trainer_state.json").is_file()


def _resume_arg(value: str | None, run_dir: Path):
    if not value:
        return None
    if value in ("last", "true", "True"):
        checkpoints = sorted((p for p in run_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
                             key=lambda p: int(p.name.split("-")[-1]))
        complete = [p for p in checkpoints if _complete(p)]
        if not complete:
            raise UserError(f"train.resume_from_checkpoint: last, but {run_dir} has no complete checkpoint-* folder")
        return str(complete[-1])
    if not Path(value).is_dir():
        raise UserError(f"train.resume_from_checkpoint: {value} is not a checkpoint folder")
    if not _complete(Path(value)):
        raise UserError(f"train.resume_from_checkpoint: {value} is incomplete (no trainer_state.json; "
                        f"the save was cut off)")
    return value


def training_arguments(profile: Profile, run_dir: Path, overrides: dict | None = None, args_class=None):
    """TrainingArguments from the profile; `overrides` are the method's and the stage's own (GaLore
    optimizer, NEFTune, β...); `args_class` a subclass a stage's trainer needs (trl's DPOConfig...)."""
    from transformers import TrainingArguments

    import torch

    train = profile.train
    bf16, fp16 = _precision(train.precision)
    return (args_class or TrainingArguments)(
        output_dir=str(run_dir),
        per_device_train_batch_size=train.batch_size,
        per_device_eval_batch_size=train.batch_size,
        gradient_accumulation_steps=train.gradient_accumulation_steps,
        learning_rate=train.learning_rate,
        num_train_epochs=train.epochs,
        max_steps=train.max_steps or -1,
        lr_scheduler_type=train.lr_scheduler,
        warmup_steps=train.warmup_ratio,  # a float < 1 is a ratio of the total steps
        weight_decay=train.weight_decay,
        max_grad_norm=train.max_grad_norm,
        logging_steps=train.logging_steps,
        save_strategy="steps" if train.save_steps else "no",
        save_steps=train.save_steps or 500,
        save_total_limit=train.save_total_limit,
        seed=train.seed,
        ddp_timeout=train.ddp_timeout,
        bf16=bf16,
        fp16=fp16,
        use_cpu=not torch.cuda.is_available(),
        report_to=list(profile.output.report_to) or "none",
        include_num_input_tokens_seen="non_padding",
        remove_unused_columns=False,
        disable_tqdm=True,
        activation_checkpointing=False,  # the model loader sets it up (trl's configs default to on)
        dataloader_pin_memory=torch.cuda.is_available(),
        **(overrides or {}),
    )


def save_final(model, tokenizer, run_dir: Path) -> Path:
    """Write the adapter or model with its tokenizer to final/, atomically."""
    final = run_dir / "final"
    tmp = Path(tempfile.mkdtemp(prefix=".final.", dir=run_dir))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def run_profile(loaded: LoadedProfile, run_dir: Path, display) -> RunResult:
    """Train `loaded.profile` into `run_dir`; raises UserError, Cancelled or any failure."""
    if loaded.profile.stage in ("eval", "predict"):  # no training: engine.eval runs them
        from ftlab.engine.eval.stage import run_stage

        return run_stage(loaded, run_dir, display)
    from ftlab.engine.quiet import quiet_libraries

    quiet_libraries()  # before peft/bitsandbytes are imported: bnb speaks at import time
    from transformers import PrinterCallback, set_seed

    from ftlab.engine.data import make_collator, prepare_dataset
    from ftlab.engine.model.loader import load_model, load_tokenizer
    from ftlab.engine.model.resolve import resolve_model

    from .callbacks import MetricsCallback, MetricsWriter, StopOnSignal, peak_memory_gib
    from .methods import apply_method, make_optimizer, trainable_summary, training_overrides
    from .stages import StageSetup, stage_for

    profile = loaded.profile
    stage = stage_for(profile.stage)
    stage_args = stage.arguments(profile)  # the stage's own checks, before any work
    started = time.perf_counter()
    stopper = StopOnSignal()

    # 1. run dir and resolved config
    run_dir.mkdir(parents=True, exist_ok=True)
    check_run_dir(run_dir, profile)
    write_atomic(run_dir / "config.yaml", dump_profile(profile))
    set_seed(profile.train.seed)

    # 2. model files and tokenizer
    folder = resolve_model(profile.model.name_or_path, log=display.print)
    tokenizer = load_tokenizer(folder, profile.model.trust_remote_code, profile.model.new_special_tokens)

    # 3. data
    data = prepare_dataset(profile.data, profile.stage, tokenizer, seed=profile.train.seed, log=display.print)

    # 4. model and method
    model = load_model(profile.model, folder, method=profile.method, max_length=profile.data.cutoff_len,
                       tokenizer=tokenizer, head=stage.head)
    model = apply_method(model, profile.method, autocast=any(_precision(profile.train.precision)),
                         adapter=profile.model.adapter)
    trainable, total = trainable_summary(model)
    display.print(f"model {profile.model.name_or_path}: {total / 1e6:,.1f}M parameters, "
                  f"{trainable / 1e6:,.2f}M trainable ({100 * trainable / max(total, 1):.2f}%, {profile.method.type})")

    # 5. train
    writer = MetricsWriter(run_dir / "metrics.jsonl")
    metrics = MetricsCallback(writer, on_record=lambda record, state: display.update(record, state.global_step))
    args = training_arguments(profile, run_dir,
                              {**training_overrides(profile.method, profile.model, model), **stage_args},
                              args_class=stage.args_class() if stage.args_class else None)
    trainer = stage.build(StageSetup(
        profile=profile, folder=folder, model=model, tokenizer=tokenizer, args=args, data=data,
        collator=make_collator(profile.stage, tokenizer), optimizer=make_optimizer(model, profile.method, args),
        callbacks=[metrics, stopper]))
    trainer.remove_callback(PrinterCallback)  # metrics.jsonl and the progress display replace its prints
    resume = _resume_arg(profile.train.resume_from_checkpoint, run_dir)
    display.start(trainer.args.max_steps if trainer.args.max_steps > 0 else _total_steps(trainer))
    try:
        output = trainer.train(resume_from_checkpoint=resume)
    finally:
        display.stop()
    summary = {"train_loss": output.training_loss, "steps": trainer.state.global_step,
               "runtime_s": round(time.perf_counter() - started, 2),
               "train_runtime_s": round(output.metrics.get("train_runtime", 0.0), 2),
               "tokens_seen": trainer.state.num_input_tokens_seen,
               "peak_mem_gib": round(peak_memory_gib(), 3),
               "trainable_params": trainable, "total_params": total, "data": data.stats}
    if stopper.requested:
        writer.write({"event": "end", "status": "cancelled", **_scalars(summary)})
        writer.close()
        raise Cancelled(f"stopped at step {trainer.state.global_step}; checkpoint saved in {run_dir}")
    if data.eval is not None:
        summary["eval_loss"] = trainer.evaluate().get("eval_loss")

    # 6. save
    final = save_final(stage.final_model(trainer), tokenizer, run_dir)
    writer.write({"event": "end", "status": "succeeded", **_scalars(summary)})
    writer.close()
    if profile.output.plot_loss:
        from .plot import plot_loss

        plot_loss(run_dir / "metrics.jsonl", run_dir / "loss.png")
    return RunResult(run_dir, final, trainer.state.global_step, output.training_loss,
                     summary["runtime_s"], summary)


def _scalars(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if isinstance(v, (int, float)) or v is None}


def _total_steps(trainer) -> int:
    per_epoch = math.ceil(len(trainer.get_train_dataloader()) / trainer.args.gradient_accumulation_steps)
    return max(1, math.ceil(per_epoch * trainer.args.num_train_epochs))
