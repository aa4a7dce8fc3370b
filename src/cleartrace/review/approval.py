"""Review states: recording → pending → approved | held.

Nothing leaves the machine before the person approved a session, or before
the policy's hold period passed without them holding it. Every change is a
ledger record committed together with the new state.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

from cleartrace.consent.ledger import Ledger
from cleartrace.store.reading import SessionInfo
from cleartrace.store.session_state import SessionState
from cleartrace.store.sessions import Store

__all__ = ["approve", "auto_approve_at", "hold", "settle"]

_DAY_NS = 86_400 * 10**9


def _record(
    ledger: Ledger, kind: str, session_id: str, **fields: Any
) -> Callable[[sqlite3.Connection], object]:
    def write(conn: sqlite3.Connection) -> object:
        return ledger.append_in(conn, kind, session=session_id, **fields)

    return write


def approve(store: Store, ledger: Ledger, session_id: str) -> bool:
    """The person approves a session for upload; False if it already was.

    Raises:
        UnknownSession, UsageError: no such session, or it is still recording.
    """
    info = store.session(session_id)
    return store.set_state(
        info.id, SessionState.APPROVED, _record(ledger, "session.approved", info.id, by="person")
    )


def hold(store: Store, ledger: Ledger, session_id: str) -> bool:
    """The person holds a session back: it never auto-approves; False if it already was held.

    Raises:
        UnknownSession, UsageError: no such session, or it is still recording.
    """
    info = store.session(session_id)
    return store.set_state(info.id, SessionState.HELD, _record(ledger, "session.held", info.id))


def auto_approve_at(info: SessionInfo, hold_days: int) -> int | None:
    """When a pending session approves itself (wall-clock ns), None if it never will.

    `hold_days` is the hold period in force (preferences.hold_days).
    """
    if info.state != SessionState.PENDING or info.ended_ns is None:
        return None
    return info.ended_ns + hold_days * _DAY_NS


def settle(store: Store, ledger: Ledger, hold_days: int, now_ns: int | None = None) -> list[str]:
    """Approve every pending session whose hold period (`hold_days`, the one in
    force) has passed; returns their ids."""
    now = time.time_ns() if now_ns is None else now_ns
    done = []
    for session_id in store.due_for_approval(now, hold_days * _DAY_NS):
        record = _record(ledger, "session.approved", session_id, by="hold_period")
        if store.set_state(session_id, SessionState.APPROVED, record):
            done.append(session_id)
    return done
