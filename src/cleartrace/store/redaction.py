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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from cleartrace.events import CATEGORY_OF_KIND, Kind, RawEvent
from cleartrace.store.chunks import SealedChunk, open_chunk_raw, seal_chunk

__all__ = [
    "KEPT_KINDS",
    "METHODS",
    "Plan",
    "Redaction",
    "Sizes",
    "applications",
    "count_removed",
    "plan_redaction",
]

#: How a redaction chose its events (recorded in the marker and the ledger,
#: whose `session.redacted` records accept exactly these).
METHODS = frozenset({"span", "time", "match", "pii", "forget"})

#: Event kinds a redaction never removes: markers that carry no content and
#: whose absence would hide that an excluded application had the focus.
KEPT_KINDS = frozenset({int(Kind.EXCLUDED_START), int(Kind.EXCLUDED_END)})
_FOCUS = int(Kind.FOCUS)

#: (removed events, new chunks, indices of the chunks they replace).
Plan = tuple[list[RawEvent], list[SealedChunk], list[int]]
#: Reads the sealed blob of one chunk of the session being redacted.
BlobReader = Callable[[int], bytes]


class Sizes(NamedTuple):
    """How the store lays out re-sealed chunks (its compaction's settings)."""

    per_chunk: int  # events per re-sealed chunk at most
    gap: int  # index distance between compacted chunks
    level: int  # zstd level


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


def plan_redaction(
    key: bytes,
    session_id: str,
    layout: list[tuple[int, int]],
    wanted: list[int],
    hwm: int,
    blob: BlobReader,
    sizes: Sizes,
) -> Plan:
    """Which events go and the chunks that replace the ones holding them.

    `layout` is (index, events) of every chunk in order, `wanted` the sorted
    session positions to remove, `hwm` the highest index the session ever used.
    A re-sealed chunk takes the index after the old one when that is free
    before the next chunk (compaction leaves gaps), so the order holds;
    the last chunk goes above every index the session ever used. With no
    gap left, that chunk and all after it are re-sealed above them all.
    """
    removed: list[RawEvent] = []
    sealed: list[SealedChunk] = []
    dropped: list[int] = []
    base, w = 0, 0
    for pos, (idx, n) in enumerate(layout):
        local = set()
        while w < len(wanted) and wanted[w] < base + n:
            local.add(wanted[w] - base)
            w += 1
        if not local:
            base += n
            continue
        following = layout[pos + 1][0] if pos + 1 < len(layout) else None
        if following is not None and idx + 1 >= following:
            tail = _reseal_tail(
                key, session_id, layout, pos, wanted[w - len(local) :], hwm, blob, sizes
            )
            return removed + tail[0], sealed + tail[1], dropped + tail[2]
        base += n
        events = open_chunk_raw(key, session_id, idx, blob(idx))
        gone = {i for i in local if events[i][1] not in KEPT_KINDS}
        if not gone:
            continue
        removed.extend(events[i] for i in sorted(gone))
        kept = [e for i, e in enumerate(events) if i not in gone]
        dropped.append(idx)
        if kept:
            slot = idx + 1 if following is not None else max(idx, hwm) + 1
            sealed_blob = seal_chunk(key, session_id, slot, kept, sizes.level)
            sealed.append((slot, len(kept), kept[0][0], kept[-1][0], sealed_blob))
    return removed, sealed, dropped


def _reseal_tail(
    key: bytes,
    session_id: str,
    layout: list[tuple[int, int]],
    start: int,
    wanted: list[int],
    hwm: int,
    blob: BlobReader,
    sizes: Sizes,
) -> Plan:
    """Re-seal layout[start:] without the events at `wanted` (session
    positions, all within that tail), above every index used so far."""
    base = sum(n for _, n in layout[:start])
    remove = {p - base for p in wanted}
    removed: list[RawEvent] = []
    kept: list[RawEvent] = []
    offset = 0
    for idx, n in layout[start:]:
        events = open_chunk_raw(key, session_id, idx, blob(idx))
        for i, event in enumerate(events):
            if offset + i in remove and event[1] not in KEPT_KINDS:
                removed.append(event)
            else:
                kept.append(event)
        offset += n
    first = max(hwm, layout[-1][0]) + 1
    sealed: list[SealedChunk] = []
    for part in range(0, len(kept), sizes.per_chunk):
        events = kept[part : part + sizes.per_chunk]
        index = first + (part // sizes.per_chunk) * sizes.gap
        sealed_blob = seal_chunk(key, session_id, index, events, sizes.level)
        sealed.append((index, len(events), events[0][0], events[-1][0], sealed_blob))
    return removed, sealed, [idx for idx, _ in layout[start:]]


def applications(key: bytes, session_id: str, blobs: Iterable[tuple[int, bytes]]) -> set[str]:
    """The applications seen in these (index, blob) chunks of a session: its
    sealed summary as it will be after a redaction."""
    apps: set[str] = set()
    for idx, sealed in blobs:
        for event in open_chunk_raw(key, session_id, idx, sealed):
            if event[1] == _FOCUS and event[6] is not None and event[6][0]:
                apps.add(event[6][0])
    return apps
