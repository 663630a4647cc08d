"""The typed profile: one small pydantic model per concern, checked once.

A profile is YAML with the sections `model`, `method`, `data`, `train` and `output` plus a
`stage`. Unknown keys and wrong types are errors (`extra="forbid"`). Every field is documented
once, in `Field(description=...)`; `ftctl run --help-profile`, `ftctl validate` and ftui's forms
read these descriptions (see `field_docs`). This module imports no torch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

STAGES = ("pt", "sft", "rm", "ppo", "dpo", "kto", "orpo", "simpo", "eval", "predict")
METHODS = ("full", "freeze", "lora", "dora", "galore")

Stage = Literal["pt", "sft", "rm", "ppo", "dpo", "kto", "orpo", "simpo", "eval", "predict"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TricksConfig(Section):
    liger_kernel: Literal["auto", "on", "off"] = Field(
        "auto", description="liger-kernel fused kernels (linear cross-entropy, RMSNorm, RoPE, SwiGLU): auto is on "
        "for a supported model on a GPU with liger-kernel installed.")
    shift_attn: bool = Field(
        False, description="S² shift short attention (LongLoRA) while training, Llama family only.")
    shift_attn_group_ratio: float = Field(
        0.25, gt=0, le=1, description="S² group size as a share of the sequence length (1: plain attention).")
    neftune_noise_alpha: float | None = Field(
        None, gt=0, description="NEFTune: uniform noise of this scale on input embeddings while training.")

    @model_validator(mode="before")
    @classmethod
    def _yaml_on_off(cls, values):  # YAML reads a bare on/off as a boolean
        if isinstance(values, dict) and isinstance(values.get("liger_kernel"), bool):
            values = dict(values)
            values["liger_kernel"] = "on" if values["liger_kernel"] else "off"
        return values


class ModelConfig(Section):
    name_or_path: str = Field(
        "smollm2-135m-instruct",
        description="Embedded model name (see `ftctl models`), a local Hugging Face folder, or a hub id.",
    )
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="Weight dtype: auto is bf16 where the accelerator supports it, fp32 on the CPU."
    )
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2"] = Field(
        "auto", description="Attention kernel; flash_attention_2 needs the flash-attn package."
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass (non-reentrant): less memory, ~30% slower."
    )
    trust_remote_code: bool = Field(
        False, description="Allow model code shipped with the checkpoint; off unless you trust it."
    )
    adapter: str | None = Field(None, description="An existing LoRA adapter folder to start from or to chat with.")
    rope_scaling: Literal["linear", "dynamic", "yarn"] | None = Field(
        None, description="RoPE scaling used when data.cutoff_len exceeds the model's context length.")
    new_special_tokens: list[str] = Field(
        default_factory=list, description="Special tokens added to the tokenizer (embeddings resized, mean-initialised, trained).")
    resize_vocab: bool = Field(
        False, description="Resize the embeddings to the tokenizer and train them (also implied by new_special_tokens).")
    moe_aux_loss_coef: float | None = Field(
        None, ge=0, description="Router load-balancing loss coefficient for MoE models (Mixtral, Qwen-MoE); "
        "none keeps the model's own; 0 switches it off.")
    tricks: TricksConfig = Field(default_factory=TricksConfig, description="Speed and long-context tricks.")

    @model_validator(mode="before")
    @classmethod
    def _split_token_list(cls, values):
        if isinstance(values, dict) and isinstance(values.get("new_special_tokens"), str):
            values = dict(values)
            values["new_special_tokens"] = [t.strip() for t in values["new_special_tokens"].split(",") if t.strip()]
        return values


class LoraConfig(Section):
    rank: int = Field(8, ge=1, le=4096, description="LoRA rank r.")
    alpha: float | None = Field(None, gt=0, description="LoRA alpha; default 2 x rank.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA input.")
    target: list[str] | Literal["all"] = Field(
        "all", description="Modules to adapt: `all` (every linear layer but the head) or a list of names."
    )
    modules_to_save: list[str] = Field(
        default_factory=list, description="Extra modules trained in full and saved with the adapter."
    )
    use_rslora: bool = Field(False, description="Rank-stabilised LoRA: scale alpha/sqrt(r) instead of alpha/r.")
    loraplus_lr_ratio: float | None = Field(
        None, gt=0, description="LoRA+: the B matrices learn this many times faster than the A matrices.")
    loraplus_lr_embedding: float | None = Field(
        None, gt=0, description="LoRA+: learning rate of adapted embedding layers (default 1e-6).")
    pissa_init: bool = Field(False, description="PiSSA: initialise A and B from the weight's principal singular vectors.")
    pissa_iter: int = Field(
        16, ge=-1, description="PiSSA fast SVD iterations (-1: exact SVD, slower).")
    upcast_adapters: bool = Field(
        True, description="Keep adapter weights in fp32 (stable); off keeps them in the model dtype (faster).")


class FreezeConfig(Section):
    trainable_layers: int = Field(
        2, description="Train the last N decoder layers (negative: the first N)."
    )
    trainable_modules: list[str] | Literal["all"] = Field(
        "all", description="Within those layers, which modules train (`all` or names such as mlp, self_attn)."
    )
    extra_modules: list[str] = Field(
        default_factory=list, description="Modules outside the layers that also train (e.g. embed_tokens)."
    )


class QuantizationConfig(Section):
    bits: Literal[4, 8] | None = Field(
        None, description="Quantize the frozen base to 4 or 8 bits (QLoRA); none trains on the full-precision base.")
    method: Literal["bnb", "gptq", "awq"] = Field(
        "bnb", description="bnb quantizes on load; gptq/awq expect an already quantized checkpoint.")
    type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type (bitsandbytes).")
    double_quant: bool = Field(True, description="Also quantize the quantization constants (bitsandbytes 4-bit).")
    compute_dtype: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="Dtype of the de-quantized matmuls: auto follows model.dtype.")


class GaloreConfig(Section):
    rank: int = Field(16, ge=1, description="Rank of the gradient projection.")
    update_interval: int = Field(200, ge=1, description="Steps between recomputing the projection.")
    scale: float = Field(2.0, gt=0, description="Scale of the projected update.")
    target: list[str] | Literal["all"] = Field(
        "all", description="Linear modules optimised with GaLore (`all`: every linear layer of the decoder).")
    layerwise: bool = Field(False, description="Update layer by layer in the backward pass (less memory, no accumulation).")


class MethodConfig(Section):
    type: Literal["full", "freeze", "lora", "dora", "galore"] = Field(
        "lora", description="Fine-tuning method: full, freeze, lora, dora or galore."
    )
    lora: LoraConfig = Field(default_factory=LoraConfig, description="LoRA/DoRA settings.")
    freeze: FreezeConfig = Field(default_factory=FreezeConfig, description="Freeze-tuning settings.")
    galore: GaloreConfig = Field(default_factory=GaloreConfig, description="GaLore settings.")
    quantization: QuantizationConfig = Field(
        default_factory=QuantizationConfig, description="Quantized base model (QLoRA; LoRA on GPTQ/AWQ).")

    @model_validator(mode="after")
    def _quantized_needs_adapter(self):
        quant = self.quantization
        if (quant.bits is not None or quant.method != "bnb") and self.type not in ("lora", "dora"):
            raise ValueError(f"a quantized base (quantization {quant.method} {quant.bits or ''}) trains only "
                             f"with lora or dora, not {self.type}")
        return self


class DataConfig(Section):
    dataset: list[str] = Field(
        default_factory=list, description="Dataset names from dataset_info.json (a comma list is accepted)."
    )
    dataset_dir: str = Field("data", description="Folder holding dataset_info.json and the data files.")
    template: Literal["auto", "chatml", "qwen", "yi", "llama3", "llama2", "mistral", "gemma", "chatglm3",
                      "baichuan2", "alpaca", "default", "empty", "fewshot"] = Field(
        "auto", description="Chat template: auto uses the tokenizer's own; a name picks a built-in one "
                            "(for base models without a template).")
    cutoff_len: int = Field(1024, ge=8, description="Maximum tokens per sample after tokenization.")
    max_samples: int | None = Field(None, ge=1, description="Use at most this many samples per dataset.")
    val_size: float = Field(0.0, ge=0, description="Held-out share (< 1) or count (>= 1) for evaluation.")
    train_on_prompt: bool = Field(False, description="Also compute loss on prompts (default: responses only).")
    mask_history: bool = Field(False, description="Train only on the last assistant turn of a conversation.")
    packing: bool = Field(False, description="Pack several samples per sequence (no cross-attention between them).")
    mix_strategy: Literal["concat", "interleave_under", "interleave_over"] = Field(
        "concat", description="How several datasets mix: concat, or interleave drawing by interleave_probs until "
                              "the first (under) or every (over, oversampling) dataset runs out.")
    interleave_probs: list[float] | None = Field(
        None, description="Sampling probabilities per dataset for interleaving (default: equal).")
    streaming: bool = Field(
        False, description="Read and tokenize on the fly (data larger than memory); needs train.max_steps.")
    buffer_size: int = Field(16384, ge=1, description="Shuffle buffer (samples) when streaming.")
    preprocessing_num_workers: int | None = Field(
        None, ge=1, description="Accepted for LlamaFactory configs; ftlab tokenizes with the Rust tokenizer's "
                                "threads on every core, overlapped with a Python thread, so it needs no worker "
                                "processes.")
    overwrite_cache: bool = Field(False, description="Ignore the preprocessing cache and rebuild it.")
    tokenized_path: str | None = Field(
        None, description="Folder to save the tokenized data to, or load it from when it exists.")
    default_system: str | None = Field(None, description="System prompt used when a sample has none.")
    enable_thinking: bool | None = Field(
        None, description="Passed to chat templates that support reasoning (e.g. Qwen3); auto only.")

    @model_validator(mode="before")
    @classmethod
    def _split_dataset_list(cls, values):
        if isinstance(values, dict) and isinstance(values.get("dataset"), str):
            values = dict(values)
            values["dataset"] = [d.strip() for d in values["dataset"].split(",") if d.strip()]
        if isinstance(values, dict) and isinstance(values.get("interleave_probs"), str):
            values = dict(values)
            values["interleave_probs"] = [float(p) for p in values["interleave_probs"].split(",") if p.strip()]
        return values


class TrainConfig(Section):
    batch_size: int = Field(4, ge=1, description="Samples per device per step.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Steps accumulated before an optimizer update.")
    learning_rate: float = Field(1e-4, gt=0, description="Peak learning rate.")
    epochs: float = Field(1.0, gt=0, description="Passes over the data (ignored when max_steps is set).")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps.")
    lr_scheduler: Literal[
        "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup", "inverse_sqrt"
    ] = Field("cosine", description="Learning-rate schedule.")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Share of steps spent warming up.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="Mixed precision: auto picks bf16 on a capable GPU and fp32 on the CPU."
    )
    logging_steps: int = Field(1, ge=1, description="Write metrics every N steps.")
    save_steps: int | None = Field(None, ge=1, description="Save a checkpoint every N steps (none: only at the end).")
    save_total_limit: int | None = Field(None, ge=1, description="Keep at most this many checkpoints.")
    seed: int = Field(42, description="Random seed for data order and initialisation.")
    ddp_timeout: int = Field(1800, ge=1, description="Seconds the ranks of a multi-GPU job wait for each "
                             "other (torch.distributed timeout) before the job fails.")
    resume_from_checkpoint: str | None = Field(None, description="Checkpoint folder to resume, or `last`.")


class OutputConfig(Section):
    dir: str = Field("out/run", description="Where the adapter/model, metrics.jsonl and log.txt are written.")
    overwrite: bool = Field(False, description="Replace an existing output folder.")
    plot_loss: bool = Field(False, description="Also write loss.png from metrics.jsonl at the end.")
    report_to: list[str] = Field(
        default_factory=list, description="Extra trackers (none by default: metrics.jsonl always)."
    )


DPO_LOSSES = ("sigmoid", "hinge", "ipo", "robust", "exo_pair", "nca_pair", "bco_pair", "sppo_hard", "apo_zero",
              "apo_down", "discopop", "sigmoid_norm")


class PrefConfig(Section):
    """Preference stages (rm, dpo, orpo, simpo, kto): the losses of trl 1.16, named as trl names them."""

    beta: float = Field(
        0.1, gt=0, description="β: dpo/kto: how far the policy may move from the reference (higher: less); "
        "orpo: the weight λ of the odds-ratio term; simpo: the reward scale.")
    loss_type: Literal[DPO_LOSSES] = Field(  # type: ignore[valid-type]
        "sigmoid", description="dpo loss (trl's loss_type): sigmoid (DPO), hinge (SLiC), ipo, robust (rDPO, uses "
        "label_smoothing), exo_pair, nca_pair, bco_pair, sppo_hard, apo_zero, apo_down, discopop, sigmoid_norm.")
    ftx: float = Field(
        0.0, ge=0, description="Weight of an SFT term (mean NLL of the chosen answers) added to the dpo and simpo "
        "losses (orpo has its own, weight 1).")
    label_smoothing: float = Field(
        0.0, ge=0, lt=0.5, validate_default=True, description="dpo with loss_type robust: the probability that a preference label is "
        "flipped; exo_pair: its ε. trl 1.16's sigmoid loss takes none.")
    simpo_gamma: float = Field(0.5, ge=0, description="simpo: the target reward margin γ.")
    kto_desirable_weight: float = Field(
        1.0, gt=0, description="kto: weight of the losses of desirable (kto_tag true) answers.")
    kto_undesirable_weight: float = Field(
        1.0, gt=0, description="kto: weight of the losses of undesirable (kto_tag false) answers.")
    ref_model: str | None = Field(
        None, description="dpo/kto reference model (embedded name or folder); none: the starting model — with "
        "LoRA the base with the adapter switched off (no second copy), else a frozen copy.")

    @field_validator("label_smoothing")
    @classmethod
    def _smoothing_needs_a_loss_that_reads_it(cls, value: float, info):
        loss = info.data.get("loss_type")
        if value and loss not in ("robust", "exo_pair"):
            raise ValueError(f"{value} needs loss_type robust or exo_pair (trl 1.16's {loss} loss has no label "
                             f"smoothing; robust is the closest to LlamaFactory's conservative DPO)")
        if loss == "exo_pair" and not value:
            raise ValueError("loss_type exo_pair needs label_smoothing > 0 (the EXO paper suggests 1e-3)")
        return value


class EvalConfig(Section):
    """The eval stage: multiple-choice benchmarks (MMLU, CMMLU, C-Eval) read from local CSV folders."""

    task: str | None = Field(
        None, description="Benchmark folder under task_dir, optionally with its split as LlamaFactory names tasks "
        "(mmlu_test, cmmlu_test, ceval_validation); none: task_dir is the benchmark folder itself.")
    task_dir: str = Field(
        "evaluation", description="Folder holding the benchmark folders, each with dev/ and val/ or test/ CSV files "
        "in MMLU's, CMMLU's or C-Eval's own layout (an optional mapping.json names subjects and categories).")
    split: Literal["dev", "val", "validation", "test"] | None = Field(
        None, description="Split to score (default: the task name's suffix, else test); the shots come from dev.")
    n_shot: int = Field(5, ge=0, description="Solved dev questions shown before each question (k-shot).")
    lang: Literal["en", "zh"] = Field(
        "en", description="Language of the prompt wording: en (MMLU) or zh (CMMLU, C-Eval).")
    batch_size: int = Field(4, ge=1, description="Questions scored per forward pass.")
    subjects: list[str] = Field(
        default_factory=list, description="Only these subjects (file names without the split suffix); empty: all.")
    max_samples: int | None = Field(None, ge=1, description="Score at most this many questions per subject.")

    @model_validator(mode="before")
    @classmethod
    def _split_subject_list(cls, values):
        if isinstance(values, dict) and isinstance(values.get("subjects"), str):
            values = dict(values)
            values["subjects"] = [s.strip() for s in values["subjects"].split(",") if s.strip()]
        return values


class GenerateConfig(Section):
    """How the predict stage generates (Hugging Face generate)."""

    max_new_tokens: int = Field(512, ge=1, description="Most tokens generated per prompt.")
    do_sample: bool = Field(
        False, description="Sample with temperature/top_p/top_k; false (the default, unlike LlamaFactory): greedy, "
        "so predictions are reproducible.")
    temperature: float = Field(0.95, gt=0, description="Sampling temperature (do_sample only).")
    top_p: float = Field(0.7, gt=0, le=1, description="Nucleus sampling: smallest token set with this probability.")
    top_k: int = Field(50, ge=0, description="Sample among the k most likely tokens (0: no limit).")
    num_beams: int = Field(1, ge=1, description="Beam search width (1: none).")
    repetition_penalty: float = Field(1.0, gt=0, description="Penalty on tokens already generated (1: none).")
    length_penalty: float = Field(1.0, description="Beam search: exponent on the length when ranking beams.")
    batch_size: int = Field(8, ge=1, description="Prompts generated together (left-padded).")
    skip_special_tokens: bool = Field(True, description="Drop special tokens from the decoded predictions.")


class Profile(Section):
    stage: Stage = Field("sft", description="Training stage: " + ", ".join(STAGES) + ".")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Which model and how to load it.")
    method: MethodConfig = Field(default_factory=MethodConfig, description="How the model is fine-tuned.")
    data: DataConfig = Field(default_factory=DataConfig, description="Which data and how it is prepared.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Optimizer and schedule.")
    output: OutputConfig = Field(default_factory=OutputConfig, description="Where results go.")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="eval stage: which benchmark and how.")
    generate: GenerateConfig = Field(default_factory=GenerateConfig, description="predict stage: decoding settings.")
    pref: PrefConfig = Field(default_factory=PrefConfig, description="Preference stages: losses and reference.")

    @model_validator(mode="after")
    def _check_across_sections(self):
        if self.data.streaming and not self.train.max_steps:
            raise ValueError("data.streaming needs train.max_steps: a stream has no length to count epochs by")
        return self


def field_docs(model: type[BaseModel] = Profile, prefix: str = "") -> dict[str, str]:
    """Dotted key → description, type and default, for help texts and forms."""
    docs: dict[str, str] = {}
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            docs.update(field_docs(annotation, key + "."))
            continue
        default = info.get_default(call_default_factory=True)
        docs[key] = f"{info.description or ''} (default: {default!r})"
    return docs
