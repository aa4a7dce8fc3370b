"""Redaction in the store: the events really go, a marker without content stays.

A redaction re-seals only the chunks that held removed events, under fresh
nonces, at a new index between the old chunk and its successor (compaction
leaves gaps for this; see `Store.redact`), and deletes the old rows in the
same transaction.
`secure_delete` zeroes the old pages, and the checkpoint that follows empties
the WAL, so the old ciphertext is in no file afterwards.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from cleartrace.consent.records import REDACTION_METHODS
from cleartrace.events import CATEGORY_OF_KIND, Kind, RawEvent

__all__ = ["KEPT_KINDS", "METHODS", "Redaction", "count_removed"]

#: How a redaction chose its events (recorded in the marker and the ledger).
METHODS = REDACTION_METHODS

#: Event kinds a redaction never removes: markers that carry no content and
#: whose absence would hide that an excluded application had the focus.
KEPT_KINDS = frozenset({int(Kind.EXCLUDED_START), int(Kind.EXCLUDED_END)})


@dataclass(frozen=True, slots=True)
class Redaction:
    """What one redaction removed from one session: kinds, counts and times only."""

    session_id: str
    method: str
    at_ns: int
    from_ns: int
    to_ns: int
    removed: dict[str, int]

    @property
    def count(self) -> int:
        return sum(self.removed.values())


def count_removed(events: Iterable[RawEvent]) -> Counter[str]:
    """Removed events per consent category."""
    out: Counter[str] = Counter()
    for event in events:
        category = CATEGORY_OF_KIND[Kind(event[1])]
        if category is not None:
            out[category.value] += 1
    return out
