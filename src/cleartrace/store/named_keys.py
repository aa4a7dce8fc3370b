"""Keys other than session keys (named keys), each stored only wrapped by the master key.

Table `wrapped_keys(name, wrapped)`: `wrapped` is `crypto.wrap_key(master,
name, key)`, the same wrapping (and AAD binding to the row's name) a session
key gets under its id in `sessions.wrapped_key`. A master-key rotation must
rewrap both: every `sessions.wrapped_key` under its session id, and every
`wrapped_keys.wrapped` under its name.
"""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

from cryptography.exceptions import InvalidTag

from cleartrace.errors import StoreCorrupt
from cleartrace.store.crypto import unwrap_key, wrap_key
from cleartrace.store.db import transaction, translate_errors
from cleartrace.store.rotation import require_current_master

__all__ = ["EXCLUSIONS", "named_key"]

#: Keys the personal exclusion list: tags (HMAC) of application names in the
#: ledger and in `excluded_apps`, and the sealed names themselves.
EXCLUSIONS = "exclusions"


def named_key(conn: sqlite3.Connection, path: Path, master: bytes, name: str) -> bytes:
    """The key called `name`, made (random, 256 bits) on first use.

    It is made in a write transaction that first checks `master` still opens
    the store: a process holding a key that a rotation elsewhere replaced
    would otherwise wrap the new key with one that no longer exists.

    Raises:
        WrongKey: another process rotated the master key since `master` was loaded.
        StoreCorrupt: the wrapped key does not open with the store's master key.
        DiskFull, StoreError: the store cannot be written or read.
    """
    sql = "SELECT wrapped FROM wrapped_keys WHERE name=?"
    with translate_errors(path):
        row = conn.execute(sql, (name,)).fetchone()
    if row is None:
        with transaction(conn, path) as txn:
            require_current_master(txn, path, master, missing_ok=True)
            # OR IGNORE: two processes making the key at once keep the first one's.
            txn.execute(
                "INSERT OR IGNORE INTO wrapped_keys(name, wrapped) VALUES (?, ?)",
                (name, wrap_key(master, name, secrets.token_bytes(32))),
            )
            row = txn.execute(sql, (name,)).fetchone()
    try:
        return unwrap_key(master, name, bytes(row[0]))
    except InvalidTag:
        pass
    with translate_errors(path):  # a replaced master key is not damage
        require_current_master(conn, path, master, missing_ok=True)
    raise StoreCorrupt(
        f"the {name} key in {path} does not open with the master key that opens the "
        "store; nothing was changed. It was wrapped by a master key that no longer "
        "exists: restore store.db together with the key files from one backup"
    )
