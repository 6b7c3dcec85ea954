"""What a state machine writes down for each change it makes (payments and orders alike)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Event:
    """An append-only record of one change, named for what happened."""

    kind: str
    data: dict[str, object] = field(default_factory=dict)
