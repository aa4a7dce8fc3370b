"""Removing a session for good, and ledgering it in the same commit.

The person deleting a session (the CLI, the tray) and the uploader shredding
one whose retention ran out do the same thing under different record kinds;
this is the one place that composes the store's crypto-shredding with the
ledger record, so that the key is gone exactly when the record exists.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from cleartrace.consent.ledger import Ledger
from cleartrace.store.sessions import Store

__all__ = ["DELETED", "SHREDDED", "remove_session"]

#: The person deleted the session.
DELETED = "session.deleted"
#: The uploader shredded an uploaded session whose retention ran out.
SHREDDED = "session.shredded"


def remove_session(
    store: Store,
    ledger: Ledger,
    session_id: str,
    kind: str = DELETED,
    *,
    also: Callable[[sqlite3.Connection], object] | None = None,
) -> None:
    """Crypto-shred `session_id` and append `kind` for it in the same commit;
    `also` runs in that transaction too (the uploader forgets when it sent it).

    Raises:
        UnknownSession: no such session, or another process removed it first
            (then it was ledgered once, by that process).
        UsageError: the session is being recorded.
        DiskFull: no room for the first commit; nothing was changed.
    """

    def record(conn: sqlite3.Connection) -> None:
        if also is not None:
            also(conn)
        ledger.append_in(conn, kind, session=session_id)

    store.delete_session(session_id, record)
