"""ftui entry point. The terminal UI is not built yet (its issue is open): say so plainly."""

import sys


def main() -> int:
    print("ftui is not available yet in this version of ftlab; use ftctl (ftctl --help).", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
