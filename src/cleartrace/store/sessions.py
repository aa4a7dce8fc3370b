"""The encrypted session store: sessions, their wrapped keys and sealed chunks.

Each session has a random 256-bit key, stored only wrapped by the master key.
Events live only inside sealed chunks. While recording, each flush appends one
small chunk in one transaction; closing a session compacts those into a few
large chunks (fresh nonces, higher zstd level), which is where the bytes per
event drop to a few. Deleting destroys the wrapped key first.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from cryptography.exceptions import InvalidTag

from cleartrace.errors import StoreCorrupt, StoreError, UnknownSession, UsageError, WrongKey
from cleartrace.events import CATEGORY_OF_KIND, Event, Kind, RawEvent
from cleartrace.paths import Paths
from cleartrace.store.chunks import (
    SealedChunk,
    open_chunk,
    open_chunk_raw,
    open_summary,
    reseal,
    seal_chunk,
    seal_summary,
)
from cleartrace.store.crypto import seal, unseal, unwrap_key, wrap_key
from cleartrace.store.db import connect, transaction, translate_errors
from cleartrace.store.keys import Keys
from cleartrace.store.redaction import KEPT_KINDS, METHODS, Redaction, count_removed
from cleartrace.store.rotation import require_current_master
from cleartrace.store.seals import MAX_SEALS, rotate_session_key, seals_used
from cleartrace.store.wrapped import KEY_CHECK, KEY_CHECK_AAD
from cleartrace.store.writers import process_token, writer_alive

__all__ = ["SessionHandle", "SessionInfo", "Store"]

log = logging.getLogger(__name__)

# Compacted chunks: 250k events is ~0.8 MB of zstd output and bounds the memory
# that compacting a day-long session takes; larger chunks compress no better.
_COMPACT_EVENTS = 250_000
_COMPACT_LEVEL = 10
# Compacted chunks get indices this far apart, so that a redaction can put a
# re-sealed chunk between its neighbours (see store/redaction.py).
_GAP = 1024
_CHECKPOINT_TRIES = 20
_EXCLUDED = "excluded_intervals"
_FOCUS = int(Kind.FOCUS)
_HWM = "chunk_hwm:"  # meta key: the highest chunk index a session ever used
_REVIEW_STATES = frozenset({"approved", "held"})
_CHUNKS_OF = "SELECT idx, blob FROM chunks WHERE session_id=? ORDER BY idx"
_INSERT_CHUNK = (
    "INSERT INTO chunks(session_id, idx, n_events, first_mono_ns, last_mono_ns, blob)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
# A session's writer: its pid (sessions.writer_pid) and, in meta under
# _WRITER + id, a token telling it from a later process given the same pid.
_WRITER = "writer:"
_WRITER_SQL = (
    "SELECT s.id, s.state, s.started_ns, s.anchor_mono_ns, s.writer_pid, m.value "
    "FROM sessions s LEFT JOIN meta m ON m.key = 'writer:' || s.id WHERE "
)


@dataclass(slots=True)
class SessionHandle:
    """A session being written by this process; key and applications stay out of `repr()`."""

    id: str
    key: bytes = field(repr=False)
    next_index: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    apps: set[str] = field(default_factory=set, repr=False)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    started_ns: int
    ended_ns: int | None
    state: str
    counts: dict[str, int]
    applications: list[str]


def _count(events: Sequence[RawEvent], counts: dict[str, int], apps: set[str]) -> None:
    """Add a batch to the per-category counts and the set of applications seen."""
    for kind, n in Counter(map(itemgetter(1), events)).items():
        category = CATEGORY_OF_KIND[Kind(kind)]
        name = category.value if category is not None else None
        if kind == Kind.EXCLUDED_START:
            name = _EXCLUDED
        if name is not None:
            counts[name] = counts.get(name, 0) + n
    apps.update(app for app, _title in filter(None, map(itemgetter(6), events)) if app)


class Store:
    """One SQLite connection, used by one thread at a time."""

    def __init__(
        self, paths: Paths, keys: Keys, conn: sqlite3.Connection, seal_limit: int = MAX_SEALS
    ) -> None:
        self._paths = paths
        self._keys = keys
        self._conn = conn
        self._seal_limit = seal_limit

    @classmethod
    def open(cls, paths: Paths, keys: Keys, *, seal_limit: int = MAX_SEALS) -> Store:
        """Open the store, check the master key, and close crashed sessions.

        `seal_limit`: values one session key may seal before it is replaced
        (store/seals.py); lowered only by tests, to reach it.

        Raises:
            WrongKey: the master key is not the one this store was made with.
            StoreCorrupt, DiskFull, StoreError: see `store.db.connect`.
        """
        conn = connect(paths.db)
        store = cls(paths, keys, conn, seal_limit)
        try:
            store._check_key()
            store.recover()
        except BaseException:
            conn.close()
            raise
        return store

    def close(self) -> None:
        self._conn.close()

    def _check_key(self) -> None:
        with translate_errors(self._paths.db):
            # OR IGNORE: two processes opening a new store at once both try.
            self._conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('key_check', ?)",
                (seal(self._keys.master, KEY_CHECK, KEY_CHECK_AAD),),
            )
            (token,) = self._conn.execute("SELECT value FROM meta WHERE key='key_check'").fetchone()
        try:
            if unseal(self._keys.master, bytes(token), KEY_CHECK_AAD) == KEY_CHECK:
                return
        except InvalidTag:
            pass
        raise WrongKey(
            f"cannot open {self._paths.db}: the master key in {self._keys.location} does not "
            "match it; restore the key this store was made with (see 'cleartrace status')"
        )

    # -- writing ------------------------------------------------------------------

    def begin_session(self, anchor_wall_ns: int, anchor_mono_ns: int) -> SessionHandle:
        """Start a session; its key exists only wrapped by the master key.

        Raises:
            WrongKey: the master key was rotated since this store was opened.
            DiskFull, StoreError: the session could not be written.
        """
        handle = SessionHandle(id=secrets.token_hex(16), key=secrets.token_bytes(32))
        wrapped = wrap_key(self._keys.master, handle.id, handle.key)
        row = (handle.id, anchor_wall_ns, anchor_mono_ns, wrapped, os.getpid())
        with transaction(self._conn, self._paths.db) as conn:
            require_current_master(conn, self._paths.db, self._keys.master)
            conn.execute(
                "INSERT INTO sessions(id, started_ns, anchor_mono_ns, state, wrapped_key,"
                " writer_pid) VALUES (?, ?, ?, 'recording', ?, ?)",
                row,
            )
            token = process_token(os.getpid()) or ""
            conn.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (_WRITER + handle.id, token))
        return handle

    def append_chunk(self, handle: SessionHandle, events: Sequence[RawEvent]) -> None:
        """Seal `events` as the next chunk; chunk, counts and summary in one transaction.

        Raises:
            DiskFull: nothing of this batch was stored; earlier chunks are intact.
        """
        if not events:
            return
        # A chunk and perhaps a summary: a new key first if they would pass the cap.
        rotated = self._rotate_if_due(handle.id, handle.key, 2)
        if rotated is not None:
            handle.key, handle.next_index = rotated
        counts, apps = dict(handle.counts), set(handle.apps)
        _count(events, counts, apps)
        blob = seal_chunk(handle.key, handle.id, handle.next_index, events)
        with transaction(self._conn, self._paths.db) as conn:
            conn.execute(
                _INSERT_CHUNK,
                (handle.id, handle.next_index, len(events), events[0][0], events[-1][0], blob),
            )
            conn.execute(
                "UPDATE sessions SET counts=? WHERE id=?",
                (json.dumps(counts, sort_keys=True), handle.id),
            )
            if apps != handle.apps:
                summary = seal_summary(handle.key, handle.id, apps)
                conn.execute("UPDATE sessions SET summary=? WHERE id=?", (summary, handle.id))
        handle.next_index += 1
        handle.counts, handle.apps = counts, apps

    def end_session(self, handle: SessionHandle, ended_wall_ns: int) -> None:
        """Compact the session into a few large chunks and mark it pending review.

        Raises:
            DiskFull: the session stays as it was (recording, small chunks);
                the next open recovers it.
        """
        self._compact(handle.id, handle.key)
        self._finish(handle.id, ended_wall_ns)
        self._checkpoint()

    def _finish(self, session_id: str, ended_ns: int) -> None:
        sql = "UPDATE sessions SET ended_ns=?, state='pending', writer_pid=NULL WHERE id=?"
        with transaction(self._conn, self._paths.db) as conn:
            conn.execute(sql + " AND state='recording'", (ended_ns, session_id))
            conn.execute("DELETE FROM meta WHERE key=?", (_WRITER + session_id,))

    def _compact(self, session_id: str, key: bytes) -> None:
        """Re-seal a session's small chunks as a few large ones, in one transaction."""
        with translate_errors(self._paths.db):
            n, last = span = self._span(session_id)
            if n <= 1:
                return
            (total,) = self._conn.execute(
                "SELECT sum(n_events) FROM chunks WHERE session_id=?", (session_id,)
            ).fetchone()
            parts = -(-int(total) // _COMPACT_EVENTS)
        if self._rotate_if_due(session_id, key, parts) is not None:
            return  # re-sealed, compacted, under a new key
        with translate_errors(self._paths.db):
            stride = _GAP if last + 1 + parts * _GAP < 1 << 32 else 1
            rows = self._conn.execute(_CHUNKS_OF, (session_id,))
            # New indices above the old: a (key, index) pair is never used twice.
            sealed = reseal(
                key, session_id, rows, last + 1, _COMPACT_EVENTS, _COMPACT_LEVEL, stride
            )
        with transaction(self._conn, self._paths.db) as conn:
            if self._span(session_id) != span:
                log.info("session %s changed while compacting; left as is", session_id[:12])
                return  # another process compacted it meanwhile
            conn.execute("DELETE FROM chunks WHERE session_id=?", (session_id,))
            conn.executemany(_INSERT_CHUNK, [(session_id, *row) for row in sealed])

    def _rotate_if_due(self, session_id: str, key: bytes, needed: int) -> tuple[bytes, int] | None:
        """(new key, next index) when sealing `needed` more values would pass
        the session key's cap, after re-sealing the session under a new key."""
        with translate_errors(self._paths.db):
            used = seals_used(self._conn, session_id)
        if used + needed <= self._seal_limit:
            return None
        return rotate_session_key(
            self._conn,
            self._paths.db,
            self._keys.master,
            session_id,
            key,
            per_chunk=_COMPACT_EVENTS,
            level=_COMPACT_LEVEL,
            stride=_GAP,
        )

    def _checkpoint(self) -> None:
        """Return free pages to the file system and empty the WAL, where old page
        images (deleted chunks, a destroyed wrapped key) live on until then. A
        reader in another process can hold that up, so retry briefly."""
        with translate_errors(self._paths.db):
            # sqlite3.execute() steps this pragma once, freeing one page;
            # executescript() runs it to completion.
            self._conn.executescript("PRAGMA incremental_vacuum;")
            for _ in range(_CHECKPOINT_TRIES):
                (busy, _log, _done) = self._conn.execute(
                    "PRAGMA wal_checkpoint(TRUNCATE)"
                ).fetchone()
                if not busy:
                    return
                time.sleep(0.05)
        log.warning(
            "%s-wal is still in use by a reader; emptied on a later checkpoint", self._paths.db
        )

    def recover(self) -> list[str]:
        """Close sessions whose writer died (kill -9, power loss); returns their ids.

        Sessions of a running writer (same pid and, on Linux, same boot and
        start time: a pid reused after a reboot does not count) are left alone.

        Raises:
            StoreCorrupt: a crashed session's key or chunks do not open.
            DiskFull: no room to compact; the session stays open for next time.
        """
        with translate_errors(self._paths.db):
            rows = self._conn.execute(_WRITER_SQL + "s.state='recording'").fetchall()
        closed = []
        for session_id, _state, started_ns, anchor_mono, pid, token in rows:
            if writer_alive(pid, token):
                continue
            self._compact(session_id, self._session_key(session_id))
            sql = "SELECT max(last_mono_ns) FROM chunks WHERE session_id=?"
            with translate_errors(self._paths.db):
                (last,) = self._conn.execute(sql, (session_id,)).fetchone()
            self._finish(session_id, started_ns + max(0, (last or anchor_mono) - anchor_mono))
            log.info("closed interrupted session %s", session_id[:12])
            closed.append(session_id)
        if closed:
            self._checkpoint()
        return closed

    # -- reading --------------------------------------------------------------------

    def _session_key(self, session_id: str) -> bytes:
        sql = "SELECT wrapped_key FROM sessions WHERE id=?"
        row = self._conn.execute(sql, (session_id,)).fetchone()
        if row is None or row[0] is None:
            raise UnknownSession(f"session {session_id[:12]} has no key (deleted)")
        try:
            return unwrap_key(self._keys.master, session_id, row[0])
        except InvalidTag:
            raise StoreCorrupt(
                f"the key of session {session_id[:12]} in {self._paths.db} does not open; "
                "restore the store from a backup or delete the session"
            ) from None

    def _info(self, row: tuple[Any, ...]) -> SessionInfo:
        session_id, started, ended, state, counts, summary = row
        apps: list[str] = []
        if summary is not None:
            apps = open_summary(self._session_key(session_id), session_id, summary)
        return SessionInfo(session_id, started, ended, state, json.loads(counts), apps)

    _COLUMNS = "id, started_ns, ended_ns, state, counts, summary"

    def list_sessions(self) -> list[SessionInfo]:
        with translate_errors(self._paths.db):
            sql = f"SELECT {self._COLUMNS} FROM sessions ORDER BY started_ns"  # noqa: S608
            rows = self._conn.execute(sql).fetchall()
        return [self._info(r) for r in rows]

    def session(self, id_or_prefix: str) -> SessionInfo:
        """One session by id or unique prefix.

        Raises:
            UnknownSession: no session matches.
            UsageError: the prefix matches several sessions.
        """
        prefix = id_or_prefix.lower()
        rows: list[tuple[Any, ...]] = []
        if prefix and all(ch in "0123456789abcdef" for ch in prefix):
            with translate_errors(self._paths.db):
                rows = self._conn.execute(
                    f"SELECT {self._COLUMNS} FROM sessions WHERE id LIKE ? LIMIT 2",  # noqa: S608
                    (prefix + "%",),
                ).fetchall()
        if not rows:
            raise UnknownSession(
                f"no session has id '{id_or_prefix}'; see 'cleartrace sessions list'"
            )
        if len(rows) > 1:
            raise UsageError(f"'{id_or_prefix}' matches several sessions; give more of the id")
        return self._info(rows[0])

    def read_events(self, session_id: str) -> list[Event]:
        """Every event of a session, in order.

        Raises:
            UnknownSession: no such session (or it was deleted).
            StoreCorrupt: a chunk does not open.
        """
        key = self._session_key(session_id)
        with translate_errors(self._paths.db):
            rows = self._conn.execute(_CHUNKS_OF, (session_id,)).fetchall()
        return [e for idx, blob in rows for e in open_chunk(key, session_id, idx, blob)]

    def _span(self, session_id: str) -> tuple[int, int]:
        sql = "SELECT count(*), coalesce(max(idx), -1) FROM chunks WHERE session_id=?"
        n, last = self._conn.execute(sql, (session_id,)).fetchone()
        return int(n), int(last)

    def chunk_count(self, session_id: str) -> int:
        """How many chunks hold the session (small while recording, few once closed)."""
        return self._span(session_id)[0]

    # -- forgetting -------------------------------------------------------------------

    def delete_session(
        self, session_id: str, record: Callable[[sqlite3.Connection], object] | None = None
    ) -> None:
        """Crypto-shred, then remove: the wrapped key goes first, in its own commit.

        `record` runs inside that first transaction (the ledger's
        "session.deleted"), so the key is gone exactly when the record exists.
        """
        self.session(session_id)
        with translate_errors(self._paths.db):
            row = self._conn.execute(_WRITER_SQL + "s.id=?", (session_id,)).fetchone()
        _id, state, _started, _anchor, pid, token = row
        if state == "recording" and writer_alive(pid, token):
            raise UsageError(
                f"session {session_id[:12]} is still being recorded (process {pid}); "
                "stop that recording first, then delete it"
            )
        with transaction(self._conn, self._paths.db) as conn:
            conn.execute(
                "UPDATE sessions SET wrapped_key=NULL, summary=NULL WHERE id=?", (session_id,)
            )
            conn.execute("DELETE FROM meta WHERE key=?", (_WRITER + session_id,))
            conn.execute("DELETE FROM outbox WHERE session_id=?", (session_id,))
            if record is not None:
                record(conn)
        with transaction(self._conn, self._paths.db) as conn:
            conn.execute("DELETE FROM chunks WHERE session_id=?", (session_id,))
            conn.execute("DELETE FROM sessions WHERE id=?", (session_id,))
        self._checkpoint()

    # -- redaction --------------------------------------------------------------------

    def _refuse_live(self, session_id: str, doing: str) -> None:
        with translate_errors(self._paths.db):
            row = self._conn.execute(_WRITER_SQL + "s.id=?", (session_id,)).fetchone()
        if row is None:
            raise UnknownSession(
                f"no session has id '{session_id}'; see 'cleartrace sessions list'"
            )
        _id, state, _started, _anchor, pid, token = row
        if state == "recording" and writer_alive(pid, token):
            raise UsageError(
                f"session {session_id[:12]} is still being recorded (process {pid}); "
                f"stop that recording first, then {doing} it"
            )

    def anchors(self, session_id: str) -> tuple[int, int]:
        """(wall-clock ns, monotonic ns) of the same instant at the session start."""
        sql = "SELECT started_ns, anchor_mono_ns FROM sessions WHERE id=?"
        with translate_errors(self._paths.db):
            started, anchor = self._conn.execute(sql, (session_id,)).fetchone()
        return int(started), int(anchor)

    def indices_between(self, session_id: str, from_ns: int, to_ns: int) -> list[int]:
        """Positions (as in `read_events`) of the events stamped in [from_ns, to_ns)
        of wall-clock time; chunks wholly outside are skipped undecrypted."""
        started, anchor = self.anchors(session_id)
        lo, hi = from_ns - started + anchor, to_ns - started + anchor
        key = self._session_key(session_id)
        sql = (
            "SELECT idx, n_events, first_mono_ns, last_mono_ns FROM chunks"
            " WHERE session_id=? ORDER BY idx"
        )
        with translate_errors(self._paths.db):
            rows = self._conn.execute(sql, (session_id,)).fetchall()
        out: list[int] = []
        base = 0
        for idx, n, first, last in rows:
            if last >= lo and first < hi:
                events = open_chunk_raw(key, session_id, idx, self._blob(session_id, idx))
                out.extend(base + i for i, e in enumerate(events) if lo <= e[0] < hi)
            base += n
        return out

    def _blob(self, session_id: str, idx: int) -> bytes:
        sql = "SELECT blob FROM chunks WHERE session_id=? AND idx=?"
        with translate_errors(self._paths.db):
            (blob,) = self._conn.execute(sql, (session_id, idx)).fetchone()
        return bytes(blob)

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
        plan = self._plan_redaction(session_id, key, layout, wanted, int(hwm))
        removed_events, new_chunks, dropped = plan
        if not removed_events:
            started, _ = self.anchors(session_id)
            return Redaction(session_id, method, time.time_ns(), started, started, {})
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
        for name, n in redaction.removed.items():
            counts[name] = counts.get(name, 0) - n
        counts = {k: v for k, v in counts.items() if v > 0}
        apps = None
        if redaction.removed.get("app_focus"):
            apps = self._applications(session_id, key, dropped, new_chunks)
        top = max([hwm, *(i for i, _ in layout), *(c[0] for c in new_chunks)])
        with transaction(self._conn, self._paths.db) as conn:
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
            conn.execute("DELETE FROM outbox WHERE session_id=?", (session_id,))
            conn.executemany(_INSERT_CHUNK, [(session_id, *c) for c in new_chunks])
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

    def _plan_redaction(
        self,
        session_id: str,
        key: bytes,
        layout: list[tuple[int, int]],
        wanted: list[int],
        hwm: int,
    ) -> tuple[list[RawEvent], list[SealedChunk], list[int]]:
        """(removed events, new chunks, indices of the chunks they replace).

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
                tail = self._reseal_tail(
                    session_id, key, layout, pos, wanted[w - len(local) :], hwm
                )
                return removed + tail[0], sealed + tail[1], dropped + tail[2]
            base += n
            events = open_chunk_raw(key, session_id, idx, self._blob(session_id, idx))
            gone = {i for i in local if events[i][1] not in KEPT_KINDS}
            if not gone:
                continue
            removed.extend(events[i] for i in sorted(gone))
            kept = [e for i, e in enumerate(events) if i not in gone]
            dropped.append(idx)
            if kept:
                slot = idx + 1 if following is not None else max(idx, hwm) + 1
                blob = seal_chunk(key, session_id, slot, kept, _COMPACT_LEVEL)
                sealed.append((slot, len(kept), kept[0][0], kept[-1][0], blob))
        return removed, sealed, dropped

    def _reseal_tail(
        self,
        session_id: str,
        key: bytes,
        layout: list[tuple[int, int]],
        start: int,
        wanted: list[int],
        hwm: int,
    ) -> tuple[list[RawEvent], list[SealedChunk], list[int]]:
        """Re-seal layout[start:] without the events at `wanted` (session
        positions, all within that tail), above every index used so far."""
        base = sum(n for _, n in layout[:start])
        remove = {p - base for p in wanted}
        removed: list[RawEvent] = []
        kept: list[RawEvent] = []
        offset = 0
        for idx, n in layout[start:]:
            events = open_chunk_raw(key, session_id, idx, self._blob(session_id, idx))
            for i, event in enumerate(events):
                if offset + i in remove and event[1] not in KEPT_KINDS:
                    removed.append(event)
                else:
                    kept.append(event)
            offset += n
        first = max(hwm, layout[-1][0]) + 1
        sealed: list[SealedChunk] = []
        for part in range(0, len(kept), _COMPACT_EVENTS):
            events = kept[part : part + _COMPACT_EVENTS]
            index = first + (part // _COMPACT_EVENTS) * _GAP
            blob = seal_chunk(key, session_id, index, events, _COMPACT_LEVEL)
            sealed.append((index, len(events), events[0][0], events[-1][0], blob))
        return removed, sealed, [idx for idx, _ in layout[start:]]

    def _applications(
        self, session_id: str, key: bytes, dropped: list[int], new_chunks: list[SealedChunk]
    ) -> set[str]:
        """The applications seen in the session as it will be after a redaction."""
        apps: set[str] = set()
        gone = set(dropped)
        with translate_errors(self._paths.db):
            rows = self._conn.execute(_CHUNKS_OF, (session_id,)).fetchall()
        blobs = [(idx, bytes(b)) for idx, b in rows if idx not in gone]
        blobs += [(c[0], c[4]) for c in new_chunks]
        for idx, blob in blobs:
            for event in open_chunk_raw(key, session_id, idx, blob):
                if event[1] == _FOCUS and event[6] is not None and event[6][0]:
                    apps.add(event[6][0])
        return apps

    def redactions(self, session_id: str) -> list[Redaction]:
        """The markers left by redactions of a session, oldest first."""
        sql = (
            "SELECT at_ns, method, from_ns, to_ns, removed FROM redactions"
            " WHERE session_id=? ORDER BY at_ns, rowid"
        )
        with translate_errors(self._paths.db):
            rows = self._conn.execute(sql, (session_id,)).fetchall()
        return [
            Redaction(session_id, method, at, lo, hi, json.loads(removed))
            for at, method, lo, hi, removed in rows
        ]

    # -- review state -------------------------------------------------------------------

    def set_state(
        self,
        session_id: str,
        state: str,
        record: Callable[[sqlite3.Connection], object] | None = None,
    ) -> bool:
        """Approve or hold a closed session; False if it already was in `state`,
        or another process changed its state meanwhile (a hold pressed while
        the hold period approves it: the hold wins, the approval is not made).

        `record` runs in the same transaction (the ledger's record of it).

        Raises:
            UsageError: the session is still recording, or `state` is not
                "approved" or "held".
        """
        if state not in _REVIEW_STATES:
            raise ValueError(f"a session can be set to {sorted(_REVIEW_STATES)}")
        info = self.session(session_id)
        if info.state == "recording":
            raise UsageError(
                f"session {session_id[:12]} is still being recorded; it can be "
                f"{state} once it has ended"
            )
        if info.state == "uploaded":
            raise UsageError(
                f"session {session_id[:12]} is already uploaded; redact or delete it to have "
                "the organisation's dataset drop it"
            )
        if info.state == state:
            return False
        with transaction(self._conn, self._paths.db) as conn:
            changed = conn.execute(
                "UPDATE sessions SET state=? WHERE id=? AND state=?", (state, info.id, info.state)
            ).rowcount
            if not changed:
                return False
            if state == "held":  # a bundle already built for it does not leave either
                conn.execute("DELETE FROM outbox WHERE session_id=?", (info.id,))
            if record is not None:
                record(conn)
        return True

    def due_for_approval(self, now_ns: int, hold_ns: int) -> list[str]:
        """Pending sessions whose hold period has passed (ended at least `hold_ns` ago)."""
        sql = "SELECT id FROM sessions WHERE state='pending' AND ended_ns <= ? ORDER BY ended_ns"
        with translate_errors(self._paths.db):
            return [r[0] for r in self._conn.execute(sql, (now_ns - hold_ns,))]
