"""Figures, the ceilings they are judged against, and the table that prints them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Ceiling:
    """A best case measured on this kind of machine (shared/PERF-CEILINGS.md)."""

    value: float
    unit: str
    #: The table and row it comes from, e.g. "http-payment uvicorn 1w c=32".
    source: str


@dataclass(frozen=True)
class Figure:
    """One measured number, with the ceiling it should be compared with, if any."""

    bench: str
    name: str
    value: float
    unit: str
    ceiling: Ceiling | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """Measured over ceiling, when both are in the same unit."""
        if self.ceiling is None or self.ceiling.unit != self.unit or not self.ceiling.value:
            return None
        return self.value / self.ceiling.value


def percentile(samples: Sequence[float], pct: float) -> float:
    """The `pct` percentile of `samples` (nearest rank; NaN when there are none)."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def number(value: float) -> str:
    """A figure as people read it: thousands separated, few digits after the point."""
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:,.2f}"


def table(figures: Iterable[Figure]) -> str:
    """The figures as a plain-text table, one row each."""
    header = ("benchmark", "figure", "measured", "ceiling (PERF-CEILINGS.md)", "ratio", "note")
    rows = [header, *(_row(f) for f in figures)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _row(f: Figure) -> tuple[str, str, str, str, str, str]:
    ceiling = (
        f"{number(f.ceiling.value)} {f.ceiling.unit} ({f.ceiling.source})" if f.ceiling else "-"
    )
    ratio = f"{f.ratio:.2f}x" if f.ratio is not None else "-"
    return (f.bench, f.name, f"{number(f.value)} {f.unit}", ceiling, ratio, f.note)


@dataclass(frozen=True)
class Goal:
    """A figure with the goal it must meet (issue 12): at most `limit` unless `at_least`."""

    bench: str
    name: str
    value: float
    unit: str
    limit: float
    at_least: bool = False
    note: str = ""

    @property
    def met(self) -> bool:
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    @property
    def verdict(self) -> str:
        # NaN: nothing to judge (a reference too small for the CPU clock, in a quick run).
        if math.isnan(self.value):
            return "NOT MEASURED"
        return "PASS" if self.met else "FAIL"


def goals_table(goals: Iterable[Goal]) -> str:
    """measured / goal / verdict, one row per goal."""
    header = ("benchmark", "figure", "measured", "goal", "verdict", "note")
    rows = [header] + [
        (g.bench, g.name, f"{number(g.value)} {g.unit}",
         f"{'>=' if g.at_least else '<='} {number(g.limit)} {g.unit}",
         g.verdict, g.note)
        for g in goals
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)
