"""Accept a LlamaFactory training YAML as it is: detect its flat keys and translate them.

LlamaFactory configs are flat (`model_name_or_path`, `finetuning_type`, `lora_rank`, ...);
ftlab profiles are nested by concern. `TRANSLATIONS` maps each supported flat key to the
nested key it sets, with a converter for values whose meaning differs. A key without a
translation is an error that names it: nothing is dropped silently.

Other issues extend `TRANSLATIONS` (data and method keys) — one entry per key.
"""

from __future__ import annotations

from typing import Any, Callable

from ftlab.errors import Problem

Converter = Callable[[Any], list[tuple[str, Any]]]


def _to(path: str) -> Converter:
    return lambda value: [(path, value)]


def _stage(value: Any) -> list[tuple[str, Any]]:
    return [("stage", value)]


def _finetuning_type(value: Any) -> list[tuple[str, Any]]:
    return [("method.type", value)]


def _lora_target(value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, str):
        names = [v.strip() for v in value.split(",") if v.strip()]
        return [("method.lora.target", "all" if names == ["all"] else names)]
    return [("method.lora.target", value)]


def _comma_list(path: str) -> Converter:
    def convert(value: Any) -> list[tuple[str, Any]]:
        if isinstance(value, str):
            return [(path, [v.strip() for v in value.split(",") if v.strip()])]
        return [(path, value)]
    return convert


def _precision(name: str) -> Converter:
    def convert(value: Any) -> list[tuple[str, Any]]:
        return [("train.precision", name)] if value is True else []
    return convert


def _report_to(value: Any) -> list[tuple[str, Any]]:
    if value in (None, "none", "None", [], ["none"]):
        return [("output.report_to", [])]
    return [("output.report_to", [value] if isinstance(value, str) else value)]


def _do_train(value: Any) -> list[tuple[str, Any]]:
    if value is not True:
        raise ValueError("only training configs are translated (do_train: true); "
                         "for evaluation or prediction use stage: eval or predict")
    return []


def _ignored_cache_flag(path: str) -> Converter:
    return _to(path)


def _neat_packing(value: Any) -> list[tuple[str, Any]]:
    # ftlab's packing never lets packed samples attend to each other: that is LlamaFactory's neat_packing
    return [("data.packing", True)] if value else []


def _packing(value: Any) -> list[tuple[str, Any]]:
    # false is the default; it must not undo a neat_packing: true given in either order
    return [("data.packing", True)] if value else []


# ---- method and model keys (issue 5)

def _flag_sets(path: str, value_if_true: Any) -> Converter:
    """A boolean LF flag that, when true, sets `path` to a value (e.g. use_dora → method.type dora)."""
    def convert(value: Any) -> list[tuple[str, Any]]:
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return [(path, value_if_true)] if value else []
    return convert


def _all_or_list(path: str) -> Converter:
    def convert(value: Any) -> list[tuple[str, Any]]:
        if isinstance(value, str):
            names = [v.strip() for v in value.split(",") if v.strip()]
            return [(path, "all" if names == ["all"] else names)]
        return [(path, value)]
    return convert


_QUANT_METHODS = {"bnb": "bnb", "bitsandbytes": "bnb", "gptq": "gptq", "awq": "awq"}
_FLASH_ATTN = {"auto": "auto", "disabled": "eager", "sdpa": "sdpa", "fa2": "flash_attention_2"}


def _quantization_method(value: Any) -> list[tuple[str, Any]]:
    if value not in _QUANT_METHODS:
        raise ValueError(f"quantization method {value!r} is not supported (use one of: bnb, gptq, awq)")
    return [("method.quantization.method", _QUANT_METHODS[value])]


def _flash_attn(value: Any) -> list[tuple[str, Any]]:
    if value not in _FLASH_ATTN:
        raise ValueError(f"expected one of {', '.join(_FLASH_ATTN)}, got {value!r}")
    return [("model.attn_implementation", _FLASH_ATTN[value])]


def _liger(value: Any) -> list[tuple[str, Any]]:
    # true → auto (on wherever it applies: a GPU with liger-kernel), false → off
    return [("model.tricks.liger_kernel", "auto" if value else "off")]


def _no_checkpointing(value: Any) -> list[tuple[str, Any]]:
    return [("model.gradient_checkpointing", not value)]


def _pure_bf16(value: Any) -> list[tuple[str, Any]]:
    return [("model.dtype", "bf16"), ("train.precision", "bf16")] if value else []


# ---- evaluation and prediction keys (`llamafactory-cli eval` and do_predict configs)

def _task(value: Any) -> list[tuple[str, Any]]:
    # LlamaFactory's eval configs have no stage key: naming a benchmark task makes the run an eval
    return [("eval.task", value), ("stage", "eval")]


def _do_predict(value: Any) -> list[tuple[str, Any]]:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return [("stage", "predict")] if value else []


def _predict_with_generate(value: Any) -> list[tuple[str, Any]]:
    if value is not True:
        raise ValueError("ftlab's predict stage always generates; predict_with_generate: false "
                         "(teacher-forced argmax predictions) is not supported")
    return []


# ---- preference keys (rm, dpo, orpo, simpo, kto)

def _pref_loss(value: Any) -> list[tuple[str, Any]]:
    # LlamaFactory picks ORPO and SimPO through pref_loss under stage dpo; ftlab names them as stages
    # (translate() applies `stage` first, so this wins over stage: dpo)
    if value in ("orpo", "simpo"):
        return [("stage", value)]
    if value in ("sigmoid", "hinge", "ipo"):
        return [("pref.loss_type", value)]
    if value == "kto_pair":
        raise ValueError("kto_pair is not in trl 1.16; use stage: kto with kto_tag data")
    raise ValueError(f"expected one of sigmoid, hinge, ipo, orpo, simpo, got {value!r}")


TRANSLATIONS: dict[str, Converter] = {
    "model_name_or_path": _to("model.name_or_path"),
    "trust_remote_code": _to("model.trust_remote_code"),
    "adapter_name_or_path": _to("model.adapter"),
    "stage": _stage,
    "do_train": _do_train,
    "finetuning_type": _finetuning_type,
    "lora_rank": _to("method.lora.rank"),
    "lora_alpha": _to("method.lora.alpha"),
    "lora_dropout": _to("method.lora.dropout"),
    "lora_target": _lora_target,
    "dataset": _comma_list("data.dataset"),
    "dataset_dir": _to("data.dataset_dir"),
    "template": _to("data.template"),
    "cutoff_len": _to("data.cutoff_len"),
    "max_samples": _to("data.max_samples"),
    "val_size": _to("data.val_size"),
    "overwrite_cache": _ignored_cache_flag("data.overwrite_cache"),
    "preprocessing_num_workers": _to("data.preprocessing_num_workers"),
    "streaming": _to("data.streaming"),
    "buffer_size": _to("data.buffer_size"),
    "mix_strategy": _to("data.mix_strategy"),
    "interleave_probs": _to("data.interleave_probs"),
    "packing": _packing,
    "neat_packing": _neat_packing,
    "train_on_prompt": _to("data.train_on_prompt"),
    "mask_history": _to("data.mask_history"),
    "tokenized_path": _to("data.tokenized_path"),
    "default_system": _to("data.default_system"),
    "enable_thinking": _to("data.enable_thinking"),
    "output_dir": _to("output.dir"),
    "overwrite_output_dir": _to("output.overwrite"),
    "plot_loss": _to("output.plot_loss"),
    "report_to": _report_to,
    "per_device_train_batch_size": _to("train.batch_size"),
    "gradient_accumulation_steps": _to("train.gradient_accumulation_steps"),
    "learning_rate": _to("train.learning_rate"),
    "num_train_epochs": _to("train.epochs"),
    "max_steps": _to("train.max_steps"),
    "lr_scheduler_type": _to("train.lr_scheduler"),
    "warmup_ratio": _to("train.warmup_ratio"),
    "weight_decay": _to("train.weight_decay"),
    "max_grad_norm": _to("train.max_grad_norm"),
    "logging_steps": _to("train.logging_steps"),
    "save_steps": _to("train.save_steps"),
    "save_total_limit": _to("train.save_total_limit"),
    "resume_from_checkpoint": _to("train.resume_from_checkpoint"),
    "seed": _to("train.seed"),
    "ddp_timeout": _to("train.ddp_timeout"),
    "bf16": _precision("bf16"),
    "fp16": _precision("fp16"),
    "freeze_trainable_layers": _to("method.freeze.trainable_layers"),
    "freeze_trainable_modules": _all_or_list("method.freeze.trainable_modules"),
    "freeze_extra_modules": _comma_list("method.freeze.extra_modules"),
    "use_dora": _flag_sets("method.type", "dora"),
    "use_rslora": _to("method.lora.use_rslora"),
    "loraplus_lr_ratio": _to("method.lora.loraplus_lr_ratio"),
    "loraplus_lr_embedding": _to("method.lora.loraplus_lr_embedding"),
    "pissa_init": _to("method.lora.pissa_init"),
    "pissa_iter": _to("method.lora.pissa_iter"),
    "additional_target": _comma_list("method.lora.modules_to_save"),
    "quantization_bit": _to("method.quantization.bits"),
    "quantization_method": _quantization_method,
    "quantization_type": _to("method.quantization.type"),
    "double_quantization": _to("method.quantization.double_quant"),
    "use_galore": _flag_sets("method.type", "galore"),
    "galore_target": _all_or_list("method.galore.target"),
    "galore_rank": _to("method.galore.rank"),
    "galore_update_interval": _to("method.galore.update_interval"),
    "galore_scale": _to("method.galore.scale"),
    "galore_layerwise": _to("method.galore.layerwise"),
    "flash_attn": _flash_attn,
    "shift_attn": _to("model.tricks.shift_attn"),
    "rope_scaling": _to("model.rope_scaling"),
    "neftune_noise_alpha": _to("model.tricks.neftune_noise_alpha"),
    "enable_liger_kernel": _liger,
    "resize_vocab": _to("model.resize_vocab"),
    "new_special_tokens": _comma_list("model.new_special_tokens"),
    "moe_aux_loss_coef": _to("model.moe_aux_loss_coef"),
    "disable_gradient_checkpointing": _no_checkpointing,
    "pure_bf16": _pure_bf16,
    "pref_beta": _to("pref.beta"),
    "pref_ftx": _to("pref.ftx"),
    "pref_loss": _pref_loss,
    "dpo_label_smoothing": _to("pref.label_smoothing"),
    "simpo_gamma": _to("pref.simpo_gamma"),
    "kto_chosen_weight": _to("pref.kto_desirable_weight"),
    "kto_rejected_weight": _to("pref.kto_undesirable_weight"),
    "ref_model": _to("pref.ref_model"),
    "task": _task,
    "task_dir": _to("eval.task_dir"),
    "n_shot": _to("eval.n_shot"),
    "lang": _to("eval.lang"),
    "batch_size": _to("eval.batch_size"),
    "save_dir": _to("output.dir"),
    "do_predict": _do_predict,
    "predict_with_generate": _predict_with_generate,
    "eval_dataset": _comma_list("data.dataset"),
    "per_device_eval_batch_size": _to("generate.batch_size"),
    "max_new_tokens": _to("generate.max_new_tokens"),
    "do_sample": _to("generate.do_sample"),
    "temperature": _to("generate.temperature"),
    "top_p": _to("generate.top_p"),
    "top_k": _to("generate.top_k"),
    "num_beams": _to("generate.num_beams"),
    "repetition_penalty": _to("generate.repetition_penalty"),
    "length_penalty": _to("generate.length_penalty"),
    "skip_special_tokens": _to("generate.skip_special_tokens"),
}

# Keys that identify a LlamaFactory config (no ftlab profile has them at the top level).
_MARKERS = {"model_name_or_path", "finetuning_type", "per_device_train_batch_size", "do_train",
            "lora_rank", "lora_target", "cutoff_len", "output_dir", "num_train_epochs"}

_SECTIONS = {"model", "method", "data", "train", "output", "pref"}


def looks_like(data: dict[str, Any]) -> bool:
    """True for a flat LlamaFactory config (any marker key at the top level)."""
    return bool(_MARKERS & set(data))


def translate(data: dict[str, Any], lines: dict[tuple, int], source: str
              ) -> tuple[dict[str, Any], dict[tuple, int], list[Problem]]:
    """Flat LlamaFactory keys → nested ftlab profile; also maps line numbers to the new keys."""
    nested: dict[str, Any] = {}
    new_lines: dict[tuple, int] = {}
    problems: list[Problem] = []
    # finetuning_type first, so that use_dora / use_galore refine it wherever they appear; stage
    # too, so that an eval task or do_predict: true decides the stage wherever they appear
    for key, value in sorted(data.items(), key=lambda item: item[0] not in ("finetuning_type", "stage")):
        line = lines.get((key,))
        if key == "eval_dataset" and "dataset" in data:
            problems.append(Problem(source, line, key, "ftlab has no separate evaluation dataset (use val_size); "
                                    "a do_predict config names its data in dataset or eval_dataset, not both"))
            continue
        if key in _SECTIONS:
            problems.append(Problem(source, line, key,
                                    "ftlab sections cannot be mixed with LlamaFactory's flat keys"))
            continue
        convert = TRANSLATIONS.get(key)
        if convert is None:
            problems.append(Problem(source, line, key,
                                    "LlamaFactory key that ftlab cannot translate (it would change the run, so "
                                    "it is not ignored); remove it or use the ftlab profile form"))
            continue
        try:
            pairs = convert(value)
        except ValueError as err:
            problems.append(Problem(source, line, key, str(err)))
            continue
        for path, new_value in pairs:
            node = nested
            parts = path.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = new_value
            if line is not None:
                for depth in range(1, len(parts) + 1):
                    new_lines.setdefault(tuple(parts[:depth]), line)
                new_lines[tuple(parts)] = line
    return nested, new_lines, problems
