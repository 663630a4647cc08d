"""Collect unusable rows by reason, with file:row examples, and turn them into one clear message."""

from __future__ import annotations

from collections import Counter

from ftlab.errors import UserError

EXAMPLES_PER_REASON = 3


class RowErrors:
    """Counts of dropped rows per reason and the first few places each reason happened."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def add(self, where: str, reason: str, detail: str = "") -> None:
        self.counts[reason] += 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < EXAMPLES_PER_REASON:
            examples.append(f"{where}" + (f" ({detail})" if detail else ""))

    def merge(self, other: "RowErrors") -> None:
        for reason, count in other.counts.items():
            self.counts[reason] += count
            examples = self.examples.setdefault(reason, [])
            for example in other.examples.get(reason, []):
                if len(examples) < EXAMPLES_PER_REASON:
                    examples.append(example)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def lines(self) -> list[str]:
        out = []
        for reason, count in self.counts.most_common():
            out.append(f"  {count} × {reason}: e.g. {'; '.join(self.examples.get(reason, []))}")
        return out

    def summary(self) -> str:
        return "\n".join(self.lines())

    def no_valid_samples(self, datasets: list[str], total_rows: int) -> UserError:
        if not self.counts:
            return UserError(f"dataset {', '.join(datasets)}: no rows ({total_rows} read)")
        return UserError(f"dataset {', '.join(datasets)}: no usable samples among {total_rows} rows; "
                         f"dropped rows by reason:\n" + self.summary())
