"""Estimate a profile's accelerator memory: weights, gradients, optimizer states, activations (with
and without gradient checkpointing), logits — for the profile's method and, for comparison, each
other method on the same model and batch. Reads only the model's config.json (no torch).

    ftctl estimate profiles/demo_lora_sft.yaml [--set train.batch_size=8] [--json]
    ftctl estimate PROFILE --shape llama2-7b     # a benchmark shape instead of the profile's model
"""

from __future__ import annotations

import json


def add_arguments(parser) -> None:
    parser.add_argument("profile", help="YAML profile (ftlab or LlamaFactory format)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key, e.g. --set data.cutoff_len=4096 (repeatable)")
    parser.add_argument("--shape", help="use a benchmark shape (llama2-7b, llama2-13b, gemma-2b, ...)")
    parser.add_argument("--json", action="store_true", help="print the estimates as JSON")


def _model_shape(profile, shape_name):
    from ftlab.engine.model.estimate import read_shape, synthetic_shape
    from ftlab.errors import UserError

    if shape_name:
        from ftlab.engine.model.synthetic import SHAPES

        if shape_name not in SHAPES:
            raise UserError(f"--shape: unknown shape {shape_name!r} (known: {', '.join(SHAPES)})")
        return synthetic_shape(shape_name)
    from pathlib import Path

    from ftlab.engine.model.registry import EMBEDDED

    name = profile.model.name_or_path
    if name in EMBEDDED:
        folder = EMBEDDED[name].folder
        if not (folder / "config.json").is_file():
            raise UserError(f"model.name_or_path: {name} is not converted yet; run `ftctl models` or a "
                            f"first training run, or pass --shape")
        return read_shape(folder)
    if (Path(name) / "config.json").is_file():
        return read_shape(name)
    raise UserError(f"model.name_or_path: {name} is not a local folder with config.json; pass --shape")


def run(args) -> int:
    from ftlab.engine.config import load_profile
    from ftlab.engine.model.estimate import compare, estimate

    profile = load_profile(args.profile, args.sets).profile
    shape = _model_shape(profile, args.shape)
    mine = estimate(profile, shape)
    others = compare(profile, shape)
    if args.json:
        print(json.dumps({"profile": mine.as_dict(), "methods": [e.as_dict() for e in others]}, indent=2))
        return 0
    tokens = f"batch {profile.train.batch_size} × {profile.data.cutoff_len} tokens"
    print(f"{mine.params / 1e9:.2f}B parameters; {tokens}; checkpointing "
          f"{'on' if profile.model.gradient_checkpointing else 'off'}")
    print(f"\n{mine.method}: {mine.total_gib:.1f} GiB ({mine.trainable / 1e6:,.1f}M trainable)")
    for part, gib in mine.parts.items():
        print(f"  {part:<12} {gib:8.2f} GiB")
    acts = mine.activations_gib
    print(f"  (activations: {acts['with_checkpointing']:.2f} GiB with checkpointing, "
          f"{acts['without_checkpointing']:.2f} GiB without)")
    for note in mine.notes:
        print(f"  note: {note}")
    print("\nper method (same model, batch and checkpointing):")
    print(f"  {'method':<22}{'total':>8}{'weights':>9}{'grads':>8}{'optim':>8}{'acts':>8}{'logits':>8}")
    for e in others:
        p = e.parts
        print(f"  {e.method:<22}{e.total_gib:8.1f}{p['weights']:9.1f}{p['gradients']:8.1f}"
              f"{p['optimizer']:8.1f}{p['activations']:8.1f}{p['logits']:8.1f}")
    return 0
