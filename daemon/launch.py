"""Start a multi-GPU job: torchrun (torch.distributed.run) with ftd's granted device count, ranks
running `python -m ftlab.cli run ...`. Runs in the job process, never inside ftd.

    python -m ftlab.daemon.launch NPROC run JOBDIR/profile.yaml --output-dir JOBDIR --log - --progress plain

Why not `torchrun --nproc-per-node N -m ftlab.cli run ... --log -` directly: torchrun's argument
parser scans the training script's arguments too, and `--log` is an ambiguous abbreviation of its
own `--log-dir`/`--logs-specs`, so it exits with a usage error. Here torchrun parses only its own
options and the engine's arguments are handed over untouched (`training_script_args`), through
torch's public entry points (`get_args_parser`, `run`).
"""

from __future__ import annotations

import sys


def torchrun_args(nproc: int, engine_args: list[str]):
    from torch.distributed.run import get_args_parser

    args = get_args_parser().parse_args(["--standalone", "--nproc-per-node", str(nproc), "-m", "ftlab.cli"])
    args.training_script_args = list(engine_args)
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2 or not argv[0].isdigit():
        print("usage: python -m ftlab.daemon.launch NPROC ENGINE_ARGS...", file=sys.stderr)
        return 2
    from torch.distributed.run import run

    run(torchrun_args(int(argv[0]), argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
