"""List known models: the embedded default and any Hugging Face folders in the models cache.

    ftctl models [--json]
"""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from ftlab import paths
from ftlab.engine.model.registry import DEFAULT_MODEL, EMBEDDED, local_models


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print as JSON")


def rows() -> list[dict]:
    found = []
    for model in EMBEDDED.values():
        found.append({"name": model.name, "kind": "embedded", "default": model.name == DEFAULT_MODEL,
                      "ready": model.is_converted(), "status": model.status(), "path": str(model.folder),
                      "description": model.description})
    for name, path in local_models():
        found.append({"name": name, "kind": "local", "default": False, "ready": True, "status": "ready",
                      "path": str(path), "description": "Hugging Face folder in the models cache"})
    return found


def run(args) -> int:
    found = rows()
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    table = Table(title=f"models (cache: {paths.models_dir()})")
    for column in ("name", "kind", "status", "description"):
        table.add_column(column)
    for row in found:
        name = row["name"] + (" (default)" if row["default"] else "")
        table.add_row(name, row["kind"], row["status"], row["description"])
    Console().print(table)
    return 0
