"""Warnings of one conversion, grouped by kind and capped so a flood stays readable."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

# Each warning is logged (at DEBUG) as it happens, for library users; a caller that prints
# the collected warnings itself (the command line) silences this logger so none shows twice.
WARNINGS_LOGGER = "xparse_convert.warnings"
log = logging.getLogger(WARNINGS_LOGGER)

MESSAGES_PER_KIND = 5


@dataclass
class WarningGroup:
    kind: str
    count: int = 0
    examples: list[str] = field(default_factory=list)


class Diagnostics:
    """Collects warnings for one input.  ``warn`` keeps the first few messages of each kind and
    counts the rest; ``lines()`` renders them for the command line."""

    def __init__(self, source: str = "") -> None:
        self.source = source
        self.groups: dict[str, WarningGroup] = {}

    def warn(self, kind: str, message: str, where: str | None = None) -> None:
        group = self.groups.get(kind)
        if group is None:
            group = self.groups[kind] = WarningGroup(kind)
        group.count += 1
        if len(group.examples) < MESSAGES_PER_KIND:
            text = f"{where}: {message}" if where else message
            group.examples.append(text)
            log.debug("%s: %s", self.source, text)

    @property
    def count(self) -> int:
        return sum(g.count for g in self.groups.values())

    def __bool__(self) -> bool:
        return bool(self.groups)

    def lines(self) -> list[str]:
        """The warnings as lines ``<where>: <what>``, with a count line per capped kind."""
        out: list[str] = []
        for group in self.groups.values():
            out.extend(group.examples)
            hidden = group.count - len(group.examples)
            if hidden > 0:
                out.append(f"{hidden} more {group.kind} warning{'s' if hidden > 1 else ''}")
        return out

    def as_dict(self) -> dict[str, dict[str, object]]:
        return {g.kind: {"count": g.count, "examples": list(g.examples)}
                for g in self.groups.values()}
