"""Closing a session: its small chunks re-sealed as a few large ones.

While recording, each flush appends one small chunk; closing compacts them
(fresh nonces, a higher zstd level, by column), which is where the bytes per
event drop to a few. The session's counts are recounted from the events
re-sealed, in the same transaction (after a crash too): what the chunks hold
is what counts.
Compacted chunks get indices `GAP` apart, so that a redaction can put a
re-sealed chunk between two neighbours (store/redaction.py). A session
about to pass its key's cap on random nonces is re-sealed under a new key
instead (store/seals.py).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from typing import NamedTuple

from cleartrace.errors import CodecError, StoreCorrupt
from cleartrace.paths import Paths
from cleartrace.store.chunks import ChunkCipher, reseal
from cleartrace.store.codec import Recoder
from cleartrace.store.db import transaction, translate_errors
from cleartrace.store.keys import Keys
from cleartrace.store.reading import CHUNKS_OF, WRITER, StoreReader
from cleartrace.store.seals import INSERT_CHUNK, rotate_session_key, seals_used
from cleartrace.store.session_state import SessionState
from cleartrace.store.tally import counts_of

__all__ = ["COMPACT_EVENTS", "COMPACT_LEVEL", "GAP", "Compactor", "Sizes", "sizes"]

log = logging.getLogger(__name__)

#: Compacted chunks: 250k events is ~0.7 MB of zstd output and bounds the
#: memory that compacting a day-long session takes; larger chunks compress no better.
COMPACT_EVENTS = 250_000
#: zstd level of compacted chunks: level 10 takes ~0.2 s for an 8-hour day
#: (1.5 M events); 15 saves ~1 % for 5 times that, 19 ~3 % for 10 times.
COMPACT_LEVEL = 10
#: Index distance between compacted chunks (room for a redaction's re-sealed chunk).
GAP = 1024


class Sizes(NamedTuple):
    """How the store lays out re-sealed chunks (its compaction's settings)."""

    per_chunk: int  # events per re-sealed chunk at most
    gap: int  # index distance between compacted chunks
    level: int  # zstd level


def sizes() -> Sizes:
    """The settings above, read when called (tests lower them to reach a split)."""
    return Sizes(COMPACT_EVENTS, GAP, COMPACT_LEVEL)


class Compactor(StoreReader):
    """`StoreReader` plus compacting and closing a session, and replacing a
    session key at its cap on sealed values."""

    def __init__(self, paths: Paths, keys: Keys, conn: sqlite3.Connection, seal_limit: int) -> None:
        super().__init__(paths, keys, conn)
        self._seal_limit = seal_limit

    def _finish(
        self,
        session_id: str,
        ended_ns: int,
        record: Callable[[sqlite3.Connection], object] | None = None,
    ) -> None:
        """Mark a recording session ended (pending review), its writer gone;
        `record` runs in that transaction only if this call closed it."""
        sql = "UPDATE sessions SET ended_ns=?, state=?, writer_pid=NULL WHERE id=? AND state=?"
        row = (ended_ns, SessionState.PENDING, session_id, SessionState.RECORDING)
        with transaction(self._conn, self._paths.db) as conn:
            closed = conn.execute(sql, row).rowcount
            conn.execute("DELETE FROM meta WHERE key=?", (WRITER + session_id,))
            if closed and record is not None:
                record(conn)

    def _compact(self, session_id: str, key: bytes) -> None:
        """Re-seal a session's small chunks as a few large ones and recount
        its counts from them, in one transaction."""
        with translate_errors(self._db):
            n, last = span = self._span(session_id)
            (total,) = self._conn.execute(
                "SELECT sum(n_events) FROM chunks WHERE session_id=?", (session_id,)
            ).fetchone()
            parts = -(-int(total or 0) // COMPACT_EVENTS)
        kinds: list[bytes] = []
        if n <= 1 or self._rotate_if_due(session_id, key, parts) is not None:
            # Nothing to join, or re-sealed and compacted under a new key: recount.
            self._save_counts(session_id, self._recount(session_id))
            return
        with translate_errors(self._db):
            stride = GAP if last + 1 + parts * GAP < 1 << 32 else 1
            rows = self._conn.execute(CHUNKS_OF, (session_id,))
            # New indices above the old: a (key, index) pair is never used twice.
            sealed = reseal(
                key, session_id, rows, last + 1, COMPACT_EVENTS, COMPACT_LEVEL, stride, kinds=kinds
            )
        with transaction(self._conn, self._db) as conn:
            if self._span(session_id) != span:
                log.info("session %s changed while compacting; left as is", session_id[:12])
                return  # another process compacted it meanwhile
            conn.execute("DELETE FROM chunks WHERE session_id=?", (session_id,))
            conn.executemany(INSERT_CHUNK, [(session_id, *row) for row in sealed])
            self._save_counts(session_id, counts_of(kinds), conn)

    def _recount(self, session_id: str) -> dict[str, int]:
        """The session's counts, from the kinds of every event in its chunks."""
        cipher = ChunkCipher(self._session_key(session_id), session_id)
        recoder = Recoder(COMPACT_EVENTS)
        with translate_errors(self._db):
            rows = self._conn.execute(CHUNKS_OF, (session_id,)).fetchall()
        for index, blob in rows:
            try:
                recoder.add(cipher.open(index, blob))
                recoder.finish()
            except CodecError as exc:
                raise StoreCorrupt(
                    f"{cipher.where(index)} cannot be decoded ({exc}); restore the store "
                    "from a backup or delete the session"
                ) from None
        return counts_of(recoder.kinds)

    def _save_counts(
        self, session_id: str, counts: dict[str, int], conn: sqlite3.Connection | None = None
    ) -> None:
        sql = "UPDATE sessions SET counts=? WHERE id=?"
        row = (json.dumps(counts, sort_keys=True), session_id)
        if conn is not None:
            conn.execute(sql, row)
            return
        with transaction(self._conn, self._db) as txn:
            txn.execute(sql, row)

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
            per_chunk=COMPACT_EVENTS,
            level=COMPACT_LEVEL,
            stride=GAP,
        )
