"""The encrypted session store: sessions, their wrapped keys and sealed chunks.

Each session has a random 256-bit key, stored only wrapped by the master key.
Events live only inside sealed chunks. While recording, each flush appends one
small chunk in one transaction; closing a session compacts those into a few
large chunks (store/compaction.py). `Store` is this module's writing on top of
one class per responsibility: reading (store/reading.py), recovery after a
crash (store/recovery.py), redaction (store/redaction.py), deletion
(store/deletion.py) and review state (store/review_state.py).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import compress
from operator import itemgetter

from cleartrace.events import Kind, RawEvent
from cleartrace.paths import Paths
from cleartrace.store.chunks import ChunkCipher, seal_summary
from cleartrace.store.codec import encode_rows
from cleartrace.store.compact_process import IN_PLACE_EVENTS, compact_in_child
from cleartrace.store.crypto import wrap_key
from cleartrace.store.db import connect, transaction, translate_errors
from cleartrace.store.deletion import Deleting
from cleartrace.store.keys import Keys
from cleartrace.store.reading import WRITER
from cleartrace.store.recovery import Recovering
from cleartrace.store.redaction import Redacting
from cleartrace.store.review_state import Reviewing
from cleartrace.store.rotation import require_current_master
from cleartrace.store.seals import INSERT_CHUNK, MAX_SEALS, seals_used
from cleartrace.store.session_state import SessionState
from cleartrace.store.tally import add_counts
from cleartrace.store.writers import process_token

__all__ = ["COUNTS_EVERY", "SessionHandle", "Store"]

#: Every how many chunks a recording session's counts are written.
COUNTS_EVERY = 5

_FOCUS = int(Kind.FOCUS)
_FOCUS_MASK = bytes(1 if k == _FOCUS else 0 for k in range(256))
_KIND = itemgetter(1)
_TEXT = itemgetter(6)
_FLUSH_LEVEL = 3


@dataclass(slots=True)
class SessionHandle:
    """A session being written by this process; key and applications stay out of `repr()`."""

    id: str
    key: bytes = field(repr=False)
    next_index: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    apps: set[str] = field(default_factory=set, repr=False)
    #: Built from `key` at the first flush, again after the key is replaced.
    cipher: ChunkCipher | None = field(default=None, repr=False, compare=False)
    #: Values the key may still seal before the store's count must be read
    #: again (store/seals.py); 0: read it at the next flush.
    seals_left: int = field(default=0, repr=False, compare=False)


class Store(Recovering, Redacting, Deleting, Reviewing):
    """The session store: reading, writing, recovery, redaction, deletion and
    review state. One SQLite connection, one thread at a time."""

    def __init__(
        self, paths: Paths, keys: Keys, conn: sqlite3.Connection, seal_limit: int = MAX_SEALS
    ) -> None:
        super().__init__(paths, keys, conn, seal_limit)

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
        row = (
            handle.id,
            anchor_wall_ns,
            anchor_mono_ns,
            SessionState.RECORDING,
            wrapped,
            os.getpid(),
        )
        with transaction(self._conn, self._paths.db) as conn:
            require_current_master(conn, self._paths.db, self._keys.master)
            conn.execute(
                "INSERT INTO sessions(id, started_ns, anchor_mono_ns, state, wrapped_key,"
                " writer_pid) VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
            token = process_token(os.getpid()) or ""
            conn.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (WRITER + handle.id, token))
        return handle

    def append_chunk(self, handle: SessionHandle, events: Sequence[RawEvent]) -> None:
        """Seal `events` as the next chunk, in one transaction with the
        sealed application list when a new application showed and, every
        `COUNTS_EVERY` chunks, the session's counts (the tray shows today's:
        they are a second behind at most, which spares most flushes a page
        written).

        The per-flush path is kept short (a flush every 200 ms): rows rather
        than columns (store/_codec_rows.py), one AES-GCM context per key, the
        key's seal count read from the store only when its cap may be near,
        counts by `bytes.count` of the kinds. Closing the session, or
        recovering it, recounts them from the chunks (store/compaction.py).

        Raises:
            DiskFull: nothing of this batch was stored; earlier chunks are intact.
        """
        if not events:
            return
        if handle.seals_left < 2:  # a chunk, and perhaps a summary
            self._refill_seals(handle)
        if handle.cipher is None:
            handle.cipher = ChunkCipher(handle.key, handle.id)
        kinds = bytes(map(_KIND, events))
        counts = dict(handle.counts)
        add_counts(kinds, counts)
        apps = handle.apps
        if _FOCUS in kinds:
            focus = compress(map(_TEXT, events), kinds.translate(_FOCUS_MASK))
            apps = apps | {app for app, _title in filter(None, focus) if app}
        index = handle.next_index
        blob = handle.cipher.seal(index, encode_rows(events), _FLUSH_LEVEL)
        with transaction(self._conn, self._db) as conn:
            conn.execute(
                INSERT_CHUNK, (handle.id, index, len(events), events[0][0], events[-1][0], blob)
            )
            if index % COUNTS_EVERY == 0:
                conn.execute(
                    "UPDATE sessions SET counts=? WHERE id=?",
                    (json.dumps(counts, sort_keys=True), handle.id),
                )
            if apps != handle.apps:
                summary = seal_summary(handle.key, handle.id, apps)
                conn.execute("UPDATE sessions SET summary=? WHERE id=?", (summary, handle.id))
                handle.seals_left -= 1
        handle.seals_left -= 1
        handle.next_index = index + 1
        handle.counts, handle.apps = counts, apps

    def _refill_seals(self, handle: SessionHandle) -> None:
        """Read how many values the handle's key may still seal, first giving
        the session a new key if the next flush could pass the cap."""
        rotated = self._rotate_if_due(handle.id, handle.key, 2)
        if rotated is not None:
            handle.key, handle.next_index = rotated
            handle.cipher = None
        with translate_errors(self._db):
            used = seals_used(self._conn, handle.id)
        handle.seals_left = self._seal_limit - used

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
        with translate_errors(self._db):
            (total,) = self._conn.execute(
                "SELECT coalesce(sum(n_events), 0) FROM chunks WHERE session_id=?", (handle.id,)
            ).fetchone()
        if total > IN_PLACE_EVENTS:  # see store/compact_process.py
            compact_in_child(
                self._paths, self._keys.master, handle.id, handle.key, self._seal_limit
            )
        else:
            self._compact(handle.id, handle.key)
        self._finish(handle.id, ended_wall_ns, record)
        self._checkpoint()
