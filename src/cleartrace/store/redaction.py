"""Redaction in the store: the events really go, a marker without content stays.

A redaction re-seals only the chunks that held removed events, under fresh
nonces, at a new index between the old chunk and its successor (compaction
leaves gaps for this; see store/compaction.py), and deletes the old rows in
the same transaction (`Redacting.redact`: the one place events are removed).
`secure_delete` zeroes the old pages, and the checkpoint that follows empties
the WAL, so the old ciphertext is in no file afterwards.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from cleartrace.errors import StoreError, UnknownSession, UsageError
from cleartrace.events import CATEGORY_OF_KIND, Kind, RawEvent
from cleartrace.store import outbox_rows
from cleartrace.store.chunks import SealedChunk, open_chunk_raw, seal_chunk, seal_summary
from cleartrace.store.compaction import Compactor, Sizes, sizes
from cleartrace.store.db import decode_object, transaction, translate_errors
from cleartrace.store.reading import CHUNKS_OF
from cleartrace.store.seals import INSERT_CHUNK
from cleartrace.store.session_state import SessionState

__all__ = [
    "KEPT_KINDS",
    "METHODS",
    "Plan",
    "Redacting",
    "Redaction",
    "applications",
    "count_removed",
    "plan_redaction",
]

#: How a redaction chose its events (recorded in the marker and the ledger,
#: whose `session.redacted` records accept exactly these).
METHODS = frozenset({"span", "time", "match", "pii", "forget"})

#: meta key prefix: the highest chunk index a session ever used (a re-sealed
#: chunk goes above it, so no (key, index) pair is sealed twice).
_HWM = "chunk_hwm:"

#: Event kinds a redaction never removes: markers that carry no content and
#: whose absence would hide that an excluded application had the focus.
KEPT_KINDS = frozenset({int(Kind.EXCLUDED_START), int(Kind.EXCLUDED_END)})
_FOCUS = int(Kind.FOCUS)
_CONTEXT = frozenset({int(Kind.SCREEN), int(Kind.MONITOR), int(Kind.LAYOUT)})

#: (removed events, new chunks, indices of the chunks they replace).
Plan = tuple[list[RawEvent], list[SealedChunk], list[int]]
#: Reads the sealed blob of one chunk of the session being redacted.
BlobReader = Callable[[int], bytes]


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


class Redacting(Compactor):
    """`Compactor` plus removing events for good, and reading the markers left."""

    def redact(
        self,
        session_id: str,
        positions: Collection[int],
        *,
        method: str,
        record: Callable[[sqlite3.Connection, Redaction], object] | None = None,
    ) -> Redaction:
        """Remove the events at `positions` (as in `read_events`) for good.

        The chunks that held them are re-sealed without them (fresh nonces), the
        old chunks are deleted, counts and the sealed application list follow,
        and a marker (method, times, counts per category — no content) is
        stored; `record` runs in that same transaction (the ledger's
        "session.redacted"). Exclusion markers are never removed.

        Raises:
            UnknownSession: no such session.
            UsageError: the session is being recorded, or a position is out of range.
            StoreError: the session changed meanwhile (nothing was changed).
        """
        if method not in METHODS:
            raise ValueError(f"unknown redaction method '{method}'")
        self._refuse_live(session_id, "redact")
        key = self._session_key(session_id)
        sql = "SELECT idx, n_events FROM chunks WHERE session_id=? ORDER BY idx"
        with translate_errors(self._paths.db):
            layout = [(int(i), int(n)) for i, n in self._conn.execute(sql, (session_id,))]
            (hwm,) = self._conn.execute(
                "SELECT value FROM meta WHERE key=?", (_HWM + session_id,)
            ).fetchone() or (-1,)
        wanted = sorted(set(positions))
        total = sum(n for _, n in layout)
        if wanted and (wanted[0] < 0 or wanted[-1] >= total):
            raise UsageError(f"session {session_id[:12]} has {total} events; nothing was changed")
        removed_events, new_chunks, dropped = plan_redaction(
            key,
            session_id,
            layout,
            wanted,
            int(hwm),
            lambda idx: self._blob(session_id, idx),
            sizes(),
        )
        if not removed_events:
            started, _ = self.anchors(session_id)
            return Redaction(session_id, method, time.time_ns(), started, started, {})
        # The new chunks and perhaps a summary count against the key's cap like
        # any write: past it, the session is re-sealed under a new key first
        # (same events, same positions, new layout) and the plan made again.
        if self._rotate_if_due(session_id, key, len(new_chunks) + 1) is not None:
            return self.redact(session_id, positions, method=method, record=record)
        started, anchor = self.anchors(session_id)
        now = time.time_ns()
        times = [e[0] for e in removed_events] or [anchor]
        redaction = Redaction(
            session_id=session_id,
            method=method,
            at_ns=now,
            from_ns=started + min(times) - anchor,
            to_ns=started + max(times) - anchor,
            removed=dict(sorted(count_removed(removed_events).items())),
        )
        counts = dict(self.session(session_id).counts)
        # The session's counts leave the screen and keyboard layouts out (see
        # `store.sessions._count`): so do what they lose.
        counted = (ev for ev in removed_events if ev[1] not in _CONTEXT)
        for name, n in count_removed(counted).items():
            counts[name] = counts.get(name, 0) - n
        counts = {k: v for k, v in counts.items() if v > 0}
        apps = None
        if redaction.removed.get("app_focus"):
            with translate_errors(self._paths.db):
                rows = self._conn.execute(CHUNKS_OF, (session_id,)).fetchall()
            gone = set(dropped)
            blobs = [(idx, bytes(b)) for idx, b in rows if idx not in gone]
            apps = applications(key, session_id, blobs + [(c[0], c[4]) for c in new_chunks])
        top = max([hwm, *(i for i, _ in layout), *(c[0] for c in new_chunks)])
        with transaction(self._conn, self._paths.db) as conn:
            state = conn.execute("SELECT state FROM sessions WHERE id=?", (session_id,)).fetchone()
            if state is None or state[0] == SessionState.DELETED:
                raise UnknownSession(f"session {session_id[:12]} was deleted meanwhile")
            if [tuple(r) for r in conn.execute(sql, (session_id,))] != layout:
                raise StoreError(
                    f"session {session_id[:12]} changed meanwhile; nothing was redacted, try again"
                )
            conn.executemany(
                "DELETE FROM chunks WHERE session_id=? AND idx=?",
                [(session_id, idx) for idx in dropped],
            )
            # A bundle built before this redaction still holds what went: it
            # never leaves; the session is bundled again from what is left.
            outbox_rows.drop_for_session(conn, session_id)
            conn.executemany(INSERT_CHUNK, [(session_id, *c) for c in new_chunks])
            conn.execute(
                "UPDATE sessions SET counts=? WHERE id=?",
                (json.dumps(counts, sort_keys=True), session_id),
            )
            if apps is not None:
                summary = seal_summary(key, session_id, apps)
                conn.execute("UPDATE sessions SET summary=? WHERE id=?", (summary, session_id))
            conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (_HWM + session_id, top)
            )
            conn.execute(
                "INSERT INTO redactions(session_id, at_ns, method, from_ns, to_ns, removed)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    session_id,
                    now,
                    method,
                    redaction.from_ns,
                    redaction.to_ns,
                    json.dumps(redaction.removed, sort_keys=True),
                ),
            )
            if record is not None:
                record(conn, redaction)
        self._checkpoint()
        return redaction

    def redactions(self, session_id: str) -> list[Redaction]:
        """The markers left by redactions of a session, oldest first.

        Raises:
            StoreCorrupt: a marker does not decode.
            StoreError: the store cannot be read.
        """
        sql = (
            "SELECT at_ns, method, from_ns, to_ns, removed FROM redactions"
            " WHERE session_id=? ORDER BY at_ns, rowid"
        )
        with translate_errors(self._paths.db):
            rows = self._conn.execute(sql, (session_id,)).fetchall()
            what = f"a redaction marker of session {session_id[:12]}"
            return [
                Redaction(session_id, method, at, lo, hi, decode_object(removed, what))
                for at, method, lo, hi, removed in rows
            ]
