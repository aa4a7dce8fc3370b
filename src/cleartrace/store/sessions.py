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

from cleartrace.errors import DiskFull, StoreError, UnknownSession, UsageError
from cleartrace.events import CATEGORY_OF_KIND, Kind, RawEvent
from cleartrace.paths import Paths
from cleartrace.store import deletion
from cleartrace.store.chunks import (
    reseal,
    seal_chunk,
    seal_summary,
)
from cleartrace.store.crypto import wrap_key
from cleartrace.store.db import connect, transaction, translate_errors
from cleartrace.store.keys import Keys
from cleartrace.store.reading import CHUNKS_OF, WRITER, WRITER_SQL, SessionInfo, StoreReader
from cleartrace.store.redaction import (
    METHODS,
    Redaction,
    Sizes,
    applications,
    count_removed,
    plan_redaction,
)
from cleartrace.store.rotation import require_current_master
from cleartrace.store.seals import INSERT_CHUNK, MAX_SEALS, rotate_session_key, seals_used
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
_EXCLUDED = "excluded_intervals"
_HWM = "chunk_hwm:"  # meta key: the highest chunk index a session ever used
_REVIEW_STATES = frozenset({"approved", "held"})


@dataclass(slots=True)
class SessionHandle:
    """A session being written by this process; key and applications stay out of `repr()`."""

    id: str
    key: bytes = field(repr=False)
    next_index: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    apps: set[str] = field(default_factory=set, repr=False)


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


class Store(StoreReader):
    """The session store: `StoreReader` plus writing, recovery, deletion,
    redaction and review state. One SQLite connection, one thread at a time."""

    def __init__(
        self, paths: Paths, keys: Keys, conn: sqlite3.Connection, seal_limit: int = MAX_SEALS
    ) -> None:
        super().__init__(paths, keys, conn)
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
            conn.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (WRITER + handle.id, token))
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
                INSERT_CHUNK,
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

    def end_session(
        self,
        handle: SessionHandle,
        ended_wall_ns: int,
        record: Callable[[sqlite3.Connection], object] | None = None,
    ) -> None:
        """Compact the session into a few large chunks and mark it pending review.

        `record` runs in the transaction that closes it (the ledger's
        "session.ended"), so no deletion can come between the two and leave
        the ledger ending a session after deleting it.

        Raises:
            DiskFull: the session stays as it was (recording, small chunks);
                the next open recovers it.
        """
        self._compact(handle.id, handle.key)
        self._finish(handle.id, ended_wall_ns, record)
        self._checkpoint()

    def _finish(
        self,
        session_id: str,
        ended_ns: int,
        record: Callable[[sqlite3.Connection], object] | None = None,
    ) -> None:
        sql = "UPDATE sessions SET ended_ns=?, state='pending', writer_pid=NULL WHERE id=?"
        with transaction(self._conn, self._paths.db) as conn:
            closed = conn.execute(sql + " AND state='recording'", (ended_ns, session_id)).rowcount
            conn.execute("DELETE FROM meta WHERE key=?", (WRITER + session_id,))
            if closed and record is not None:
                record(conn)

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
            rows = self._conn.execute(CHUNKS_OF, (session_id,))
            # New indices above the old: a (key, index) pair is never used twice.
            sealed = reseal(
                key, session_id, rows, last + 1, _COMPACT_EVENTS, _COMPACT_LEVEL, stride
            )
        with transaction(self._conn, self._paths.db) as conn:
            if self._span(session_id) != span:
                log.info("session %s changed while compacting; left as is", session_id[:12])
                return  # another process compacted it meanwhile
            conn.execute("DELETE FROM chunks WHERE session_id=?", (session_id,))
            conn.executemany(INSERT_CHUNK, [(session_id, *row) for row in sealed])

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

    def recover(self) -> list[str]:
        """Close sessions whose writer died (kill -9, power loss); returns their ids.

        Sessions of a running writer (same pid and, on Linux, same boot and
        start time: a pid reused after a reboot does not count) are left alone.

        Raises:
            StoreCorrupt: a crashed session's key or chunks do not open.
            DiskFull: no room to compact; the session stays open for next time.
        """
        with translate_errors(self._paths.db):
            unfinished = deletion.pending(self._conn)
        if unfinished:
            try:
                with transaction(self._conn, self._paths.db) as conn:
                    deletion.finish(conn)
                log.info("finished %d interrupted session deletions", len(unfinished))
            except DiskFull:
                # Their keys are destroyed and no reader shows them: only the
                # space waits. Refusing to open would lock the person out.
                log.warning(
                    "%d deleted sessions wait for disk space to be removed", len(unfinished)
                )
                unfinished = []
        with translate_errors(self._paths.db):
            rows = self._conn.execute(WRITER_SQL + "s.state='recording'").fetchall()
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
        if closed or unfinished or self.old_pages_remain():
            self._checkpoint()
        return closed

    # -- forgetting -------------------------------------------------------------------

    def delete_session(
        self, session_id: str, record: Callable[[sqlite3.Connection], object] | None = None
    ) -> None:
        """Crypto-shred, then remove: the wrapped key goes first, in its own commit.

        That first transaction also marks the session deleted, so from then on
        it is gone for every reader (listing, review, upload), and `record`
        runs inside it (the ledger's "session.deleted"): the key is gone
        exactly when the record exists. The second removes the chunks; if the
        process dies between the two, the next `Store.open` finishes the job
        without a second record (see `store.deletion`).

        Once the first commit is made the deletion is done: a full disk in
        the second is logged, and the next `Store.open` with room finishes it.

        Raises:
            UnknownSession: no such session, or another process deleted it first
                (checked inside the first transaction: one deletion, one record).
            UsageError: the session is being recorded.
            DiskFull: no room for the first commit; nothing was changed.
        """
        self._refuse_live(session_id, "delete")
        with transaction(self._conn, self._paths.db) as conn:
            if not deletion.mark(conn, session_id):
                raise UnknownSession(
                    f"session {session_id[:12]} was deleted meanwhile by another process"
                )
            if record is not None:
                record(conn)
        try:
            with transaction(self._conn, self._paths.db) as conn:
                deletion.purge(conn, session_id)
            self._checkpoint()
        except DiskFull:
            log.warning(
                "session %s is deleted (its key is destroyed); the disk is full, so its "
                "chunks are removed on a later start",
                session_id[:12],
            )

    # -- redaction --------------------------------------------------------------------

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
            Sizes(_COMPACT_EVENTS, _GAP, _COMPACT_LEVEL),
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
        for name, n in redaction.removed.items():
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
            if state is None or state[0] == deletion.DELETED:
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
            conn.execute("DELETE FROM outbox WHERE session_id=?", (session_id,))
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
