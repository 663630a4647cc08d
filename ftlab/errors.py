"""User-facing errors: one clear message and exit code 2, never a traceback (unless --debug).

Anything the user can fix (a bad profile, a missing file, an unknown model) is raised as a
`UserError`; the entry points print its message and exit with `EXIT_USAGE`.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_USAGE = 2


class UserError(Exception):
    """A problem in what the user gave us; `str(err)` is the whole message to print."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class Problem:
    """One problem found in a profile or data file: where it is and what was expected."""

    source: str  # a file path, or "--set"
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"


class ProblemsError(UserError):
    """Several problems reported together (all at once, not one per run)."""

    def __init__(self, problems: list[Problem], title: str = "invalid profile"):
        self.problems = problems
        self.title = title
        lines = [f"{title}: {len(problems)} problem{'s' if len(problems) != 1 else ''}"]
        lines += [f"  {p}" for p in problems]
        super().__init__("\n".join(lines))
