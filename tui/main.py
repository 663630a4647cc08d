"""`ftui`: the terminal UI for ftd — follow jobs, start runs, watch devices, chat with checkpoints.

    ftui                    # connect to your ftd (FTLAB_ENDPOINT, else the user socket, else the system one)
    ftui --lang zh          # start in Chinese (F8 switches en → zh → ru while running)
    ftui --endpoint ipc:///run/ftlab/ftd.sock

Keys: F1 jobs · F2 new run · F3 devices · F4 chat · F8 language · Ctrl+Q quit. Works over SSH,
in tmux and with TERM=xterm-256color; usable at 80×24. Never imports torch.
"""

from __future__ import annotations

import argparse
import os
import sys

from .i18n import LANGUAGES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ftui", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", help="ftd's socket, e.g. ipc:///run/ftlab/ftd.sock (default: see above)")
    default_lang = os.environ.get("FTUI_LANG", "en")
    parser.add_argument("--lang", choices=LANGUAGES, default=default_lang if default_lang in LANGUAGES else "en",
                        help="interface language (default: $FTUI_LANG or en)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .app import FtuiApp

    FtuiApp(endpoint=args.endpoint, lang=args.lang).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
