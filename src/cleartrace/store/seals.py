"""The cap on random nonces per session key, and the key's rotation at the cap.

Every chunk and summary is sealed under a fresh random 96-bit nonce. NIST SP
800-38D (section 8.3) allows at most 2^32 invocations of AES-GCM with random
nonces per key, beyond which a nonce collision (fatal to GCM) becomes more
likely than 2^-32. A trigger in the schema counts the values each session
key has sealed (meta['seals:' || id], store/db.py), in the same transaction as
each write, whatever path writes. Before a write would pass the cap the
session gets a new key: its chunks are re-sealed (compacted) under it and its
summary too, and the wrapped key replaced, all in one transaction, so a crash
leaves the old key with the old chunks or the new key with the new ones.

At one flush per 200 ms the cap is 27 years of recording away; it is a
guarantee, not a routine event.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from pathlib import Path

from cleartrace.store.chunks import SealedChunk, open_summary, reseal, seal_summary
from cleartrace.store.crypto import wrap_key
from cleartrace.store.db import transaction, translate_errors
from cleartrace.store.reading import CHUNKS_OF
from cleartrace.store.rotation import require_current_master

__all__ = ["INSERT_CHUNK", "MAX_SEALS", "rotate_session_key", "seals_used"]

log = logging.getLogger(__name__)

#: NIST SP 800-38D's limit on seals under one key with random 96-bit nonces.
MAX_SEALS = 1 << 32

INSERT_CHUNK = (
    "INSERT INTO chunks(session_id, idx, n_events, first_mono_ns, last_mono_ns, blob)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


def seals_used(conn: sqlite3.Connection, session_id: str) -> int:
    """How many values the session's current key has sealed."""
    row = conn.execute("SELECT value FROM meta WHERE key=?", ("seals:" + session_id,)).fetchone()
    return 0 if row is None else int(row[0])


def rotate_session_key(
    conn: sqlite3.Connection,
    db: Path,
    master: bytes,
    session_id: str,
    old_key: bytes,
    *,
    per_chunk: int,
    level: int,
    stride: int,
) -> tuple[bytes, int]:
    """Give a session a new key, re-sealing (and compacting) its chunks and
    summary under it in one transaction; returns (new key, next free index).

    Indices start again from 0: a (key, index) pair is still never used
    twice, since the key is new.

    Raises:
        StoreCorrupt: a chunk or the summary does not open under `old_key`.
        WrongKey: the master key was rotated by another process meanwhile.
        DiskFull, StoreError: nothing was changed.
    """
    new_key = secrets.token_bytes(32)
    with transaction(conn, db) as txn:
        require_current_master(txn, db, master)
        rows = txn.execute(CHUNKS_OF, (session_id,))
        sealed: list[SealedChunk] = reseal(
            old_key, session_id, rows, 0, per_chunk, level, stride, into=new_key
        )
        (summary,) = txn.execute(
            "SELECT summary FROM sessions WHERE id=?", (session_id,)
        ).fetchone()
        txn.execute("DELETE FROM chunks WHERE session_id=?", (session_id,))
        txn.execute("DELETE FROM meta WHERE key=?", ("seals:" + session_id,))
        txn.executemany(INSERT_CHUNK, [(session_id, *chunk) for chunk in sealed])
        if summary is not None:
            apps = open_summary(old_key, session_id, bytes(summary))
            txn.execute(
                "UPDATE sessions SET summary=? WHERE id=?",
                (seal_summary(new_key, session_id, apps), session_id),
            )
        txn.execute(
            "UPDATE sessions SET wrapped_key=? WHERE id=?",
            (wrap_key(master, session_id, new_key), session_id),
        )
    with translate_errors(db):
        used = seals_used(conn, session_id)
    log.info("session %s has a new key (%d values re-sealed)", session_id[:12], used)
    next_index = sealed[-1][0] + 1 if sealed else 0
    return new_key, next_index
