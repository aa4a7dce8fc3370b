"""A session's counts: its events per category, told from their kinds alone.

The counts are of what the person did (and focus changes, and excluded
intervals): the screen and keyboard layouts are context, not counted, so no
click is shown for a screen layout. They are a function of the events: a
recording writes them with each chunk, and compaction recounts them from the
chunks it joins (store/compaction.py), so closed sessions' counts are what
their chunks hold, whatever happened while recording.
"""

from __future__ import annotations

from cleartrace.events import CATEGORY_OF_KIND, Kind

__all__ = ["EXCLUDED", "add_counts", "counts_of"]

EXCLUDED = "excluded_intervals"
_CONTEXT = frozenset({Kind.SCREEN, Kind.MONITOR, Kind.LAYOUT})


def _name(kind: Kind) -> str | None:
    if kind is Kind.EXCLUDED_START:
        return EXCLUDED
    category = CATEGORY_OF_KIND[kind]
    return category.value if category is not None else None


#: (kind, the count it adds to), for the kinds that are counted.
_NAMED = tuple((int(k), name) for k in Kind if k not in _CONTEXT and (name := _name(k)) is not None)


def add_counts(kinds: bytes, counts: dict[str, int]) -> None:
    """Add the events whose kinds are `kinds` (one byte each) to `counts`."""
    for kind, name in _NAMED:
        n = kinds.count(kind)
        if n:
            counts[name] = counts.get(name, 0) + n


def counts_of(kinds: list[bytes]) -> dict[str, int]:
    """The counts of the events whose kinds are `kinds`, batch after batch."""
    counts: dict[str, int] = {}
    for part in kinds:
        add_counts(part, counts)
    return counts
