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
from cleartrace.store.db import translate_errors

__all__ = ["EXCLUSIONS", "named_key"]

#: Keys the personal exclusion list: tags (HMAC) of application names in the
#: ledger and in `excluded_apps`, and the sealed names themselves.
EXCLUSIONS = "exclusions"


def named_key(conn: sqlite3.Connection, path: Path, master: bytes, name: str) -> bytes:
    """The key called `name`, made (random, 256 bits) on first use.

    Raises:
        StoreCorrupt: the wrapped key does not open with this master key.
        DiskFull, StoreError: the store cannot be written or read.
    """
    with translate_errors(path):
        # OR IGNORE: two processes making the key at once keep the first one's.
        conn.execute(
            "INSERT OR IGNORE INTO wrapped_keys(name, wrapped) VALUES (?, ?)",
            (name, wrap_key(master, name, secrets.token_bytes(32))),
        )
        (wrapped,) = conn.execute(
            "SELECT wrapped FROM wrapped_keys WHERE name=?", (name,)
        ).fetchone()
    try:
        return unwrap_key(master, name, bytes(wrapped))
    except InvalidTag:
        raise StoreCorrupt(
            f"the {name} key in {path} does not open with the master key; restore the "
            "store from a backup"
        ) from None
