"""Look at a profile's data as the model will see it.

    ftctl data inspect profiles/demo_lora_sft.yaml [-n 3] [--set data.cutoff_len=64] [--json]

Tokenizes the profile's datasets for its stage (or loads them from the preprocessing cache) and
prints N decoded samples: the masked parts (prompts, padding; no loss) dimmed and the trained
parts highlighted, followed by the statistics: rows read, samples kept, truncated, dropped per
reason with file:row examples, and a histogram of token lengths.
"""

from __future__ import annotations

import json


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    inspect = sub.add_parser("inspect", help="show decoded samples with their loss mask, and statistics",
                             description=__doc__)
    inspect.add_argument("profile", help="YAML profile (ftlab or LlamaFactory format)")
    inspect.add_argument("-n", type=int, default=3, metavar="N", help="samples to show (default 3)")
    inspect.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                         help="override a key, e.g. --set data.cutoff_len=256 (repeatable)")
    inspect.add_argument("--stage", default=None, help="tokenize for another stage than the profile's")
    inspect.add_argument("--json", action="store_true", help="print samples and statistics as JSON")


def _segments(tokenizer, ids, labels) -> list[tuple[bool, str]]:
    """Consecutive runs of trained / masked tokens, decoded."""
    out: list[tuple[bool, str]] = []
    run: list[int] = []
    state = None
    for token, label in zip(ids, labels if labels is not None else [-100] * len(ids)):
        trained = label != -100
        if state is not None and trained != state:
            out.append((state, tokenizer.decode(run)))
            run = []
        state = trained
        run.append(token)
    if run:
        out.append((bool(state), tokenizer.decode(run)))
    return out


def _views(stage_kind: str, row: dict) -> list[tuple[str, list, list | None]]:
    if stage_kind == "pairwise":
        return [("chosen", row["chosen_input_ids"], row["chosen_labels"]),
                ("rejected", row["rejected_input_ids"], row["rejected_labels"])]
    if stage_kind == "kto":
        tag = "desirable" if row["kto_tag"] else "undesirable"
        return [(tag, row["input_ids"], row["labels"])]
    if stage_kind == "unsupervised":
        reference = [t for t in row["labels"] if t != -100]
        return [("prompt", row["input_ids"], None), ("reference", reference, reference)]
    return [("", row["input_ids"], row["labels"])]


def run(args) -> int:
    from ftlab.engine.config import load_profile
    from ftlab.engine.data.pipeline import stage_kind
    from ftlab.engine.data.registry import load_registry

    loaded = load_profile(args.profile, args.sets)
    profile = loaded.profile
    stage = args.stage or profile.stage
    kind = stage_kind(stage)
    load_registry(profile.data.dataset_dir, profile.data.dataset)  # registry problems before loading a model

    from ftlab.engine.data import prepare_dataset
    from ftlab.engine.model.loader import load_tokenizer
    from ftlab.engine.model.resolve import resolve_model

    quiet = args.json
    log = (lambda *_: None) if quiet else (lambda msg: print(msg))
    folder = resolve_model(profile.model.name_or_path, log=log)
    tokenizer = load_tokenizer(folder, profile.model.trust_remote_code)
    prepared = prepare_dataset(profile.data, stage, tokenizer, seed=profile.train.seed, log=log)
    stats = prepared.stats
    rows = []
    if prepared.stats.get("streaming"):
        for index, row in enumerate(prepared.train):
            if index >= args.n:
                break
            rows.append(row)
    else:
        rows = [prepared.train[i] for i in range(min(args.n, len(prepared.train)))]

    if args.json:
        samples = []
        for row in rows:
            samples.append({name or "sample": {"tokens": len(ids),
                                                "segments": [{"trained": t, "text": s}
                                                             for t, s in _segments(tokenizer, ids, labels)]}
                            for name, ids, labels in _views(kind, row)})
        print(json.dumps({"stage": stage, "stats": stats, "samples": samples}, indent=1, ensure_ascii=False))
        return 0

    from rich.console import Console
    from rich.rule import Rule
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    for index, row in enumerate(rows):
        for name, ids, labels in _views(kind, row):
            title = f"sample {index + 1}" + (f" · {name}" if name else "") + f" · {len(ids)} tokens"
            if "position_ids" in row:
                title += f" · {sum(1 for p in row['position_ids'] if p == 0)} packed"
            console.print(Rule(title, align="left"))
            text = Text()
            for trained, segment in _segments(tokenizer, ids, labels):
                text.append(segment, style="bold green" if trained else "dim")
            console.print(text)
    console.print(Rule("statistics", align="left"))
    console.print("[dim]dim: masked (no loss)[/dim] · [bold green]green: trained[/bold green]")
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    if stats.get("streaming"):
        table.add_row("streaming", "yes (statistics are not known before training reads the data)")
    else:
        table.add_row("rows read", str(stats["samples"]))
        table.add_row("samples kept", str(stats["kept"]))
        table.add_row("truncated", f"{stats['truncated']} (to cutoff_len {profile.data.cutoff_len})")
        table.add_row("dropped", str(stats["dropped"]))
        for reason, count in stats["dropped_by_reason"].items():
            examples = "; ".join(stats.get("dropped_examples", {}).get(reason, []))
            table.add_row("", f"{count} × {reason}  [dim]e.g. {examples}[/dim]")
        table.add_row("tokens", f"{stats['tokens']:,}")
        table.add_row("rows", f"{stats['train_rows']} train" + (" (packed)" if stats["packed"] else "")
                      + (f", {stats['eval_rows']} eval" if stats["eval_rows"] else ""))
        table.add_row("template", str(stats.get("template")))
    console.print(table)
    histogram = stats.get("length_histogram") or []
    if histogram:
        console.print("[bold]token lengths[/bold] (samples before packing)")
        peak = max(c for _, _, c in histogram) or 1
        for low, high, count in histogram:
            bar = "█" * round(30 * count / peak)
            console.print(f"  {low:>6}–{high:<6} {bar} {count}")
    return 0
