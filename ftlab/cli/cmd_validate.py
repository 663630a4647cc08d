"""Validate a profile: every problem at once with file, line and key; exit 2 if any.

    ftctl validate profiles/demo_lora_sft.yaml [--set train.max_steps=5] [--json]
"""

from __future__ import annotations

import json

from ftlab.engine.config import dump_profile, load_profile


def add_arguments(parser) -> None:
    parser.add_argument("profile", help="YAML profile (ftlab or LlamaFactory format)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key, e.g. --set train.learning_rate=5e-5 (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the resolved profile as JSON")


def run(args) -> int:
    loaded = load_profile(args.profile, args.sets)
    if args.json:
        print(json.dumps({"ok": True, "flavour": loaded.flavour,
                          "profile": loaded.profile.model_dump(mode="json")}, indent=2))
    else:
        print(f"{args.profile}: ok ({loaded.flavour} format)")
        print(dump_profile(loaded.profile), end="")
    return 0
