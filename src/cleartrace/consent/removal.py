"""Removing a session for good, and ledgering it in the same commit.

The person deleting a session (the CLI, the tray) and the uploader shredding
one whose retention ran out do the same thing under different record kinds;
this is the one place that composes the store's crypto-shredding with the
ledger record, so that the key is gone exactly when the record exists.

A recorder ending a session in which nothing was typed, clicked or scrolled
removes it here too (`close_session`), as a deletion: the ledger then reads
"started, ended, deleted", which every reader of the chain already knows, and
nothing of it waits for review or upload.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Mapping

from cleartrace.consent.ledger import Ledger
from cleartrace.errors import ClearTraceError
from cleartrace.events import Kind
from cleartrace.store.sessions import SessionHandle, Store

__all__ = ["DELETED", "NOT_KEPT", "SHREDDED", "close_session", "inputs", "remove_session"]

log = logging.getLogger(__name__)

#: The person deleted the session.
DELETED = "session.deleted"
#: The uploader shredded an uploaded session whose retention ran out.
SHREDDED = "session.shredded"
#: What the person is told of a session `close_session` did not keep.
NOT_KEPT = "nothing was typed, clicked or scrolled: the session was not kept"

#: What counts as input: a key pressed (not its release), a button pressed,
#: a scroll step. Mouse moves and focus changes happen without anyone working.
_INPUT_KINDS = (int(Kind.KEY_DOWN), int(Kind.BUTTON_DOWN), int(Kind.SCROLL))


def inputs(by_kind: Mapping[int, int]) -> int:
    """How many inputs counts per event kind hold."""
    return sum(by_kind.get(kind, 0) for kind in _INPUT_KINDS)


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


def close_session(
    store: Store, ledger: Ledger, handle: SessionHandle, by_kind: Mapping[int, int], minimum: int
) -> bool:
    """End the recorded session (ledgering "session.ended" in the same commit);
    then, if it holds fewer than `minimum` inputs (`by_kind`: its events
    counted per kind), remove it as a deletion. Returns whether it was kept.

    A removal that fails leaves the session ended and pending, as any other:
    the person sees it and may delete it.

    Raises:
        DiskFull: the session could not be closed (the next open recovers it).
    """
    store.end_session(
        handle,
        time.time_ns(),
        lambda conn: ledger.append_in(conn, "session.ended", session=handle.id),
    )
    if inputs(by_kind) >= minimum:
        return True
    try:
        remove_session(store, ledger, handle.id)
    except ClearTraceError as exc:
        log.warning("a session without input could not be removed: %s", type(exc).__name__)
        return True
    log.info("a session without input was not kept")
    return False
