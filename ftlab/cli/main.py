"""ftctl entry point: parse the command line and dispatch to one plain function per subcommand.

`COMMANDS` is the single table of subcommands: name → module that defines `add_arguments(parser)`
and `run(args) -> int`. tests/test_cli.py keeps the table, the parser and DESIGN's command list in
sync. Command modules import nothing heavy at module level: `ftctl jobs` must start fast and
never import torch; `ftctl run` imports the engine inside its `run` function.

User errors print one message and exit 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from ftlab import __version__
from ftlab.errors import EXIT_USAGE, UserError

# name → (module under ftlab.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("cmd_run", "run a profile in the foreground, without the daemon"),
    "validate": ("cmd_validate", "check a profile and report every problem at once"),
    "models": ("cmd_models", "list known models and whether each is ready on this machine"),
    "serve": ("cmd_serve", "serve a model over an OpenAI-compatible HTTP API"),
    "chat": ("cmd_chat", "chat with a model in the terminal (one-shot with --message)"),
    "submit": ("cmd_submit", "queue a profile as a job on ftd (--wait follows it)"),
    "jobs": ("cmd_jobs", "list your jobs on ftd (--all: every user's, for admins)"),
    "show": ("cmd_show", "show one job: state, devices, last metrics, error"),
    "logs": ("cmd_logs", "print a job's log (-f follows it)"),
    "cancel": ("cmd_cancel", "cancel a queued or running job"),
    "resume": ("cmd_resume", "queue a stopped job again from its last checkpoint"),
    "devices": ("cmd_devices", "accelerators, VRAM, utilisation and the job holding each"),
    "ping": ("cmd_ping", "check that ftd answers and who it thinks you are"),
    "export": ("cmd_export", "export a run's adapter, or the model merged with it (--merge)"),
    "estimate": ("cmd_estimate", "estimate a profile's GPU memory, per method"),
    "data": ("cmd_data", "inspect a profile's data: decoded samples with the loss mask, and statistics"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser; with `only`, just that subcommand's module is imported (the others get a
    bare entry), so `ftctl jobs` does not pay for importing every command's dependencies."""
    parser = argparse.ArgumentParser(
        prog="ftctl", description="ftlab command line: run, submit and follow fine-tuning jobs."
    )
    parser.add_argument("--version", action="version", version=f"ftlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(f"ftlab.cli.{module_name}")
        command_parser = sub.add_parser(name, help=help_text, description=module.__doc__,
                                        formatter_class=argparse.RawDescriptionHelpFormatter)
        command_parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                    help="show tracebacks instead of one-line errors")
        module.add_arguments(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    command = next((w for w in words if not w.startswith("-")), None)
    parser = build_parser(only=command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False) or os.environ.get("FTLAB_DEBUG") == "1"
    try:
        code = args._run(args)
    except UserError as err:
        if debug:
            traceback.print_exc()
        print(f"ftctl {args.command}: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
