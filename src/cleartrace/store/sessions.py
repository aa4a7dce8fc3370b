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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag

from cleartrace.errors import StoreCorrupt, UnknownSession, UsageError, WrongKey
from cleartrace.events import CATEGORY_OF_KIND, Event, Kind, RawEvent
from cleartrace.paths import Paths
from cleartrace.store.chunks import open_chunk, seal_chunk
from cleartrace.store.crypto import seal, unseal, unwrap_key, wrap_key
from cleartrace.store.db import connect, transaction, translate_errors
from cleartrace.store.keys import Keys

__all__ = ["SessionHandle", "SessionInfo", "Store"]

log = logging.getLogger(__name__)

_KEY_CHECK = b"cleartrace-key-check"
_COMPACT_EVENTS = 1_000_000
_COMPACT_LEVEL = 10
_EXCLUDED = "excluded_intervals"


@dataclass(slots=True)
class SessionHandle:
    """A session being written by this process."""

    id: str
    key: bytes
    next_index: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    apps: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    started_ns: int
    ended_ns: int | None
    state: str
    counts: dict[str, int]
    applications: list[str]


def _count(events: Sequence[RawEvent], counts: dict[str, int], apps: set[str]) -> None:
    kinds: dict[int, int] = {}
    for ev in events:
        kinds[ev[1]] = kinds.get(ev[1], 0) + 1
        if ev[6] is not None and ev[6][0]:
            apps.add(ev[6][0])
    for kind, n in kinds.items():
        category = CATEGORY_OF_KIND[Kind(kind)]
        if category is not None:
            counts[category.value] = counts.get(category.value, 0) + n
        elif kind == Kind.EXCLUDED_START:
            counts[_EXCLUDED] = counts.get(_EXCLUDED, 0) + n


class Store:
    """One SQLite connection, used by one thread at a time."""

    def __init__(self, paths: Paths, keys: Keys, conn: sqlite3.Connection) -> None:
        self._paths = paths
        self._keys = keys
        self._conn = conn

    @classmethod
    def open(cls, paths: Paths, keys: Keys) -> Store:
        """Open the store, check the master key, and close crashed sessions.

        Raises:
            WrongKey: the master key is not the one this store was made with.
            StoreCorrupt, DiskFull, StoreError: see `store.db.connect`.
        """
        conn = connect(paths.db)
        store = cls(paths, keys, conn)
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
            row = self._conn.execute("SELECT value FROM meta WHERE key='key_check'").fetchone()
            if row is None:
                token = seal(self._keys.master, _KEY_CHECK, b"key-check")
                self._conn.execute("INSERT INTO meta(key, value) VALUES ('key_check', ?)", (token,))
                return
        try:
            if unseal(self._keys.master, row[0], b"key-check") == _KEY_CHECK:
                return
        except InvalidTag:
            pass
        raise WrongKey(
            f"cannot open {self._paths.db}: the master key in {self._keys.location} does not "
            "match it; restore the key this store was made with (see 'cleartrace status')"
        )

    # -- writing ------------------------------------------------------------------

    def begin_session(self, anchor_wall_ns: int, anchor_mono_ns: int) -> SessionHandle:
        """Start a session; its key exists only wrapped by the master key."""
        handle = SessionHandle(id=secrets.token_hex(16), key=secrets.token_bytes(32))
        with transaction(self._conn, self._paths.db) as conn:
            conn.execute(
                "INSERT INTO sessions(id, started_ns, anchor_mono_ns, state, wrapped_key,"
                " writer_pid) VALUES (?, ?, ?, 'recording', ?, ?)",
                (
                    handle.id,
                    anchor_wall_ns,
                    anchor_mono_ns,
                    wrap_key(self._keys.master, handle.id, handle.key),
                    os.getpid(),
                ),
            )
        return handle

    @staticmethod
    def _seal_summary(handle: SessionHandle, apps: set[str]) -> bytes:
        aad = b"summary" + bytes.fromhex(handle.id)
        return seal(handle.key, json.dumps(sorted(apps)).encode(), aad)

    def append_chunk(self, handle: SessionHandle, events: Sequence[RawEvent]) -> None:
        """Seal `events` as the next chunk; chunk, counts and summary in one transaction.

        Raises:
            DiskFull: nothing of this batch was stored; earlier chunks are intact.
        """
        if not events:
            return
        counts, apps = dict(handle.counts), set(handle.apps)
        _count(events, counts, apps)
        blob = seal_chunk(handle.key, handle.id, handle.next_index, events)
        with transaction(self._conn, self._paths.db) as conn:
            conn.execute(
                "INSERT INTO chunks(session_id, idx, n_events, first_mono_ns, last_mono_ns, blob)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (handle.id, handle.next_index, len(events), events[0][0], events[-1][0], blob),
            )
            conn.execute(
                "UPDATE sessions SET counts=? WHERE id=?",
                (json.dumps(counts, sort_keys=True), handle.id),
            )
            if apps != handle.apps:
                conn.execute(
                    "UPDATE sessions SET summary=? WHERE id=?",
                    (self._seal_summary(handle, apps), handle.id),
                )
        handle.next_index += 1
        handle.counts, handle.apps = counts, apps

    def end_session(self, handle: SessionHandle, ended_wall_ns: int) -> None:
        """Compact the session into large chunks and mark it pending review."""
        self._compact(handle.id, handle.key)
        with transaction(self._conn, self._paths.db) as conn:
            conn.execute(
                "UPDATE sessions SET ended_ns=?, state='pending', writer_pid=NULL WHERE id=?",
                (ended_wall_ns, handle.id),
            )
        self._checkpoint()

    def _compact(self, session_id: str, key: bytes) -> None:
        rows = self._conn.execute(
            "SELECT idx, blob FROM chunks WHERE session_id=? ORDER BY idx", (session_id,)
        ).fetchall()
        if len(rows) <= 1:
            return
        raw: list[RawEvent] = [
            (
                e.t_ns,
                int(e.kind),
                e.a,
                e.b,
                e.c,
                e.d,
                (e.app, e.title) if e.kind is Kind.FOCUS else None,
            )
            for idx, blob in rows
            for e in open_chunk(key, session_id, idx, blob)
        ]
        first = rows[-1][0] + 1  # new indices never reuse an old (key, index) pair
        sealed = []
        for n, start in enumerate(range(0, len(raw), _COMPACT_EVENTS)):
            part = raw[start : start + _COMPACT_EVENTS]
            blob = seal_chunk(key, session_id, first + n, part, level=_COMPACT_LEVEL)
            sealed.append((session_id, first + n, len(part), part[0][0], part[-1][0], blob))
        with transaction(self._conn, self._paths.db) as conn:
            conn.execute("DELETE FROM chunks WHERE session_id=?", (session_id,))
            conn.executemany(
                "INSERT INTO chunks(session_id, idx, n_events, first_mono_ns, last_mono_ns, blob)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                sealed,
            )

    def _checkpoint(self) -> None:
        """Return free pages to the file system and empty the WAL."""
        with translate_errors(self._paths.db):
            # sqlite3.execute() steps this pragma once, freeing one page;
            # executescript() runs it to completion.
            self._conn.executescript("PRAGMA incremental_vacuum;")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def recover(self) -> list[str]:
        """Close sessions whose writer died (kill -9, power loss); returns their ids."""
        with translate_errors(self._paths.db):
            rows = self._conn.execute(
                "SELECT id, started_ns, anchor_mono_ns, writer_pid FROM sessions "
                "WHERE state='recording'"
            ).fetchall()
        closed = []
        for session_id, started_ns, anchor_mono, pid in rows:
            if pid is not None and _alive(pid):
                continue
            key = self._session_key(session_id)
            self._compact(session_id, key)
            (last,) = self._conn.execute(
                "SELECT max(last_mono_ns) FROM chunks WHERE session_id=?", (session_id,)
            ).fetchone()
            ended = started_ns if last is None else started_ns + (last - anchor_mono)
            with transaction(self._conn, self._paths.db) as conn:
                conn.execute(
                    "UPDATE sessions SET ended_ns=?, state='pending', writer_pid=NULL WHERE id=?",
                    (ended, session_id),
                )
            log.info("closed interrupted session %s", session_id[:12])
            closed.append(session_id)
        if closed:
            self._checkpoint()
        return closed

    # -- reading --------------------------------------------------------------------

    def _session_key(self, session_id: str) -> bytes:
        row = self._conn.execute(
            "SELECT wrapped_key FROM sessions WHERE id=?", (session_id,)
        ).fetchone()
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
            key = self._session_key(session_id)
            try:
                apps = json.loads(unseal(key, summary, b"summary" + bytes.fromhex(session_id)))
            except InvalidTag:
                raise StoreCorrupt(
                    f"the summary of session {session_id[:12]} in {self._paths.db} is damaged"
                ) from None
        return SessionInfo(session_id, started, ended, state, json.loads(counts), apps)

    _COLUMNS = "id, started_ns, ended_ns, state, counts, summary"

    def list_sessions(self) -> list[SessionInfo]:
        with translate_errors(self._paths.db):
            rows = self._conn.execute(
                f"SELECT {self._COLUMNS} FROM sessions ORDER BY started_ns"  # noqa: S608
            ).fetchall()
        return [self._info(r) for r in rows]

    def session(self, id_or_prefix: str) -> SessionInfo:
        """One session by id or unique prefix.

        Raises:
            UnknownSession: no session matches.
            UsageError: the prefix matches several sessions.
        """
        prefix = id_or_prefix.lower()
        if not prefix or any(ch not in "0123456789abcdef" for ch in prefix):
            raise UnknownSession(
                f"no session has id '{id_or_prefix}'; see 'cleartrace sessions list'"
            )
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

    def iter_events(self, session_id: str) -> Iterator[Event]:
        key = self._session_key(session_id)
        with translate_errors(self._paths.db):
            rows = self._conn.execute(
                "SELECT idx, blob FROM chunks WHERE session_id=? ORDER BY idx", (session_id,)
            ).fetchall()
        for idx, blob in rows:
            yield from open_chunk(key, session_id, idx, blob)

    def read_events(self, session_id: str) -> list[Event]:
        return list(self.iter_events(session_id))

    def chunk_count(self, session_id: str) -> int:
        (n,) = self._conn.execute(
            "SELECT count(*) FROM chunks WHERE session_id=?", (session_id,)
        ).fetchone()
        return int(n)

    # -- forgetting -------------------------------------------------------------------

    def delete_session(
        self, session_id: str, record: Callable[[sqlite3.Connection], object] | None = None
    ) -> None:
        """Crypto-shred, then remove: the wrapped key goes first, in its own commit.

        `record` runs inside that first transaction (the ledger's
        "session.deleted"), so the key is gone exactly when the record exists.
        """
        self.session(session_id)
        with transaction(self._conn, self._paths.db) as conn:
            conn.execute(
                "UPDATE sessions SET wrapped_key=NULL, summary=NULL WHERE id=?", (session_id,)
            )
            if record is not None:
                record(conn)
        with transaction(self._conn, self._paths.db) as conn:
            conn.execute("DELETE FROM chunks WHERE session_id=?", (session_id,))
            conn.execute("DELETE FROM sessions WHERE id=?", (session_id,))
        self._checkpoint()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
