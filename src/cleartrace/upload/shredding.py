"""Shredding the local copies of uploaded sessions whose retention ran out.

The policy's `keep_uploaded_days` says how long a device keeps what reached
the collector; the removal itself is the consent layer's (`remove_session`),
the same the person's own deletion uses, under the record kind
"session.shredded".
"""

from __future__ import annotations

import sqlite3
import time

from cleartrace.consent.ledger import Ledger
from cleartrace.consent.policy import Policy
from cleartrace.consent.removal import SHREDDED, remove_session
from cleartrace.errors import UnknownSession
from cleartrace.store import outbox_rows
from cleartrace.store.sessions import Store
from cleartrace.upload.outbox import Outbox

__all__ = ["shred_expired"]

_DAY_NS = 86_400 * 10**9


def shred_expired(
    store: Store, ledger: Ledger, outbox: Outbox, policy: Policy, now_ns: int | None
) -> list[str]:
    """Shred local copies of uploaded sessions whose retention ran out."""
    if policy.keep_uploaded_days is None:
        return []
    now = time.time_ns() if now_ns is None else now_ns
    done = []
    for session_id in outbox.uploaded_before(now - policy.keep_uploaded_days * _DAY_NS):

        def sent(conn: sqlite3.Connection, sid: str = session_id) -> None:
            outbox_rows.forget_uploaded_at(conn, sid)

        try:
            remove_session(store, ledger, session_id, SHREDDED, also=sent)
        except UnknownSession:
            continue  # the person (or another pass) deleted it meanwhile: ledgered once
        done.append(session_id)
    return done
