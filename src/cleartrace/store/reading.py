"""Reading the encrypted session store: listing, opening and locating events.

`StoreReader` holds the connection and what every use of the store needs: the
master-key check, unwrapping a session's key, listing sessions and reading
their events, and the checkpoint that empties the WAL after a deletion or a
redaction. `Store` (store/sessions.py) adds writing, recovery, deletion,
redaction and review state on top.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag

from cleartrace.errors import StoreCorrupt, UnknownSession, UsageError, WrongKey
from cleartrace.events import Event, RawEvent
from cleartrace.paths import Paths
from cleartrace.store.chunks import open_chunk, open_chunk_raw, open_summary
from cleartrace.store.crypto import seal, unwrap_key
from cleartrace.store.db import (
    DamagedRow,
    checkpoint_due,
    decode_object,
    empty_wal,
    translate_errors,
)
from cleartrace.store.keys import Keys
from cleartrace.store.rotation import master_opens
from cleartrace.store.session_state import SessionState
from cleartrace.store.wrapped import KEY_CHECK, KEY_CHECK_AAD
from cleartrace.store.writers import writer_alive

__all__ = ["CHUNKS_OF", "WRITER", "WRITER_SQL", "SessionInfo", "StoreReader", "count_sessions"]

log = logging.getLogger(__name__)

#: Every chunk of a session, in order.
CHUNKS_OF = "SELECT idx, blob FROM chunks WHERE session_id=? ORDER BY idx"
#: A session's writer: its pid (sessions.writer_pid) and, in meta under
#: WRITER + id, a token telling it from a later process given the same pid.
WRITER = "writer:"
WRITER_SQL = (
    "SELECT s.id, s.state, s.started_ns, s.anchor_mono_ns, s.writer_pid, m.value "
    "FROM sessions s LEFT JOIN meta m ON m.key = 'writer:' || s.id WHERE "
)
_STATES = frozenset(s.value for s in SessionState)
# Readers never see a session whose deletion has begun (see store/deletion.py).
_LIVE = f"WHERE state != '{SessionState.DELETED}' AND wrapped_key IS NOT NULL"


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    started_ns: int
    ended_ns: int | None
    state: SessionState
    counts: dict[str, int]
    applications: list[str]


def count_sessions(conn: sqlite3.Connection, path: Path) -> int:
    """How many sessions the store file holds, read without any key (`status`).
    A session whose deletion a crash interrupted is gone already.

    Raises:
        StoreError: the file cannot be read.
    """
    sql = "SELECT count(*) FROM sessions WHERE state != ?"
    with translate_errors(path):
        (n,) = conn.execute(sql, (SessionState.DELETED,)).fetchone()
    return int(n)


class StoreReader:
    """One SQLite connection, used by one thread at a time."""

    def __init__(self, paths: Paths, keys: Keys, conn: sqlite3.Connection) -> None:
        self._paths = paths
        self._db = paths.db  # a property that builds a Path: read once, used per flush
        self._keys = keys
        self._conn = conn

    def close(self) -> None:
        self._conn.close()

    def _check_key(self) -> None:
        with translate_errors(self._paths.db):
            # OR IGNORE: two processes opening a new store at once both try.
            self._conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('key_check', ?)",
                (seal(self._keys.master, KEY_CHECK, KEY_CHECK_AAD),),
            )
            if master_opens(self._conn, self._keys.master):
                return
        raise WrongKey(
            f"cannot open {self._paths.db}: the master key in {self._keys.location} does not "
            "match it; restore the key this store was made with (see 'cleartrace status')"
        )

    def _checkpoint(self) -> bool:
        """Return free pages to the file system and empty the WAL (see
        `store.db.empty_wal`); False when a reader held the WAL."""
        with translate_errors(self._paths.db):
            # sqlite3.execute() steps this pragma once, freeing one page;
            # executescript() runs it to completion.
            self._conn.executescript("PRAGMA incremental_vacuum;")
        return empty_wal(self._conn, self._paths.db)

    def old_pages_remain(self) -> bool:
        """Whether the WAL may still hold values sealed by a replaced master key
        (a reader held it during the rotation's checkpoint)."""
        return checkpoint_due(self._conn, self._paths.db)

    def _stale_master(self, what: str) -> WrongKey | None:
        """A WrongKey telling this process to restart when another one rotated
        the master key since it was loaded; None when the key is current."""
        with translate_errors(self._paths.db):
            if master_opens(self._conn, self._keys.master):
                return None
        return WrongKey(
            f"{what} in {self._paths.db} does not open with the master key this program "
            "loaded: another process replaced it (cleartrace keys rotate); nothing was "
            "changed, restart this program to load the new key"
        )

    def _session_key(self, session_id: str) -> bytes:
        """The session's key, unwrapped.

        Raises:
            UnknownSession: the session is gone (or its deletion has begun).
            WrongKey: another process rotated the master key since this one loaded it.
            StoreCorrupt: the wrapped key does not open with the current master key.
        """
        sql = "SELECT wrapped_key FROM sessions WHERE id=?"
        with translate_errors(self._paths.db):
            row = self._conn.execute(sql, (session_id,)).fetchone()
        if row is None or row[0] is None:
            raise UnknownSession(f"session {session_id[:12]} has no key (deleted)")
        try:
            return unwrap_key(self._keys.master, session_id, row[0])
        except InvalidTag:
            stale = self._stale_master(f"the key of session {session_id[:12]}")
            if stale is not None:
                raise stale from None
            raise StoreCorrupt(
                f"the key of session {session_id[:12]} in {self._paths.db} does not open; "
                "restore the store from a backup or delete the session"
            ) from None

    def _info(self, row: tuple[Any, ...]) -> SessionInfo:
        session_id, started, ended, state, counts, summary = row
        with translate_errors(self._paths.db):
            if state not in _STATES:
                raise DamagedRow(f"the state of session {session_id[:12]}")
            counted = decode_object(counts, f"the counts of session {session_id[:12]}")
        apps: list[str] = []
        if summary is not None:
            apps = open_summary(self._session_key(session_id), session_id, summary)
        return SessionInfo(session_id, started, ended, SessionState(state), counted, apps)

    _COLUMNS = "id, started_ns, ended_ns, state, counts, summary"

    def list_sessions(self) -> list[SessionInfo]:
        with translate_errors(self._paths.db):
            sql = f"SELECT {self._COLUMNS} FROM sessions {_LIVE} ORDER BY started_ns"  # noqa: S608
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
                    f"SELECT {self._COLUMNS} FROM sessions {_LIVE} AND id LIKE ? LIMIT 2",  # noqa: S608
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
        key, rows = self._sealed_chunks(session_id)
        return [e for idx, blob in rows for e in open_chunk(key, session_id, idx, blob)]

    def event_chunks(self, session_id: str) -> Iterator[list[RawEvent]]:
        """A session's events, in order, one stored chunk at a time as plain
        tuples: a fold over a long session holds one chunk decoded, never all
        of it (several times faster to decode than `Event`s, too).

        Raises:
            UnknownSession: no such session (or it was deleted).
            StoreCorrupt: a chunk does not open.
        """
        # The sealed chunks are read at once (a few bytes an event) and only
        # decoded one at a time: a statement stepped through the fold would
        # hold its read snapshot, and no deletion or redaction made meanwhile
        # could checkpoint what it removed out of the WAL and the old pages.
        key, rows = self._sealed_chunks(session_id)
        for idx, blob in rows:
            yield open_chunk_raw(key, session_id, idx, blob)

    def _sealed_chunks(self, session_id: str) -> tuple[bytes, list[tuple[int, bytes]]]:
        """The session's key and its (index, sealed chunk) rows, in order."""
        key = self._session_key(session_id)
        with translate_errors(self._paths.db):
            rows = self._conn.execute(CHUNKS_OF, (session_id,)).fetchall()
        return key, rows

    def _span(self, session_id: str) -> tuple[int, int]:
        sql = "SELECT count(*), coalesce(max(idx), -1) FROM chunks WHERE session_id=?"
        with translate_errors(self._paths.db):
            n, last = self._conn.execute(sql, (session_id,)).fetchone()
        return int(n), int(last)

    def chunk_count(self, session_id: str) -> int:
        """How many chunks hold the session (small while recording, few once closed)."""
        return self._span(session_id)[0]

    def _refuse_live(self, session_id: str, doing: str) -> None:
        with translate_errors(self._paths.db):
            row = self._conn.execute(WRITER_SQL + "s.id=?", (session_id,)).fetchone()
        if row is None or row[1] == SessionState.DELETED:
            raise UnknownSession(
                f"no session has id '{session_id}'; see 'cleartrace sessions list'"
            )
        _id, state, _started, _anchor, pid, token = row
        if state == SessionState.RECORDING and writer_alive(pid, token):
            raise UsageError(
                f"session {session_id[:12]} is still being recorded (process {pid}); "
                f"end it with 'cleartrace sessions end-current' (recording goes on in a "
                f"new session), then {doing} it"
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

    def due_for_approval(self, now_ns: int, hold_ns: int) -> list[str]:
        """Pending sessions whose hold period has passed (ended at least `hold_ns` ago)."""
        sql = "SELECT id FROM sessions WHERE state=? AND ended_ns <= ? ORDER BY ended_ns"
        with translate_errors(self._paths.db):
            rows = self._conn.execute(sql, (SessionState.PENDING, now_ns - hold_ns))
            return [str(r[0]) for r in rows]
