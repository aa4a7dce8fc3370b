"""Sessions detached from the recorder and closed later, outside its lock.

Closing a session compacts it: seconds for a long day. The recorder detaches
a session under its lock (its writer flushed and joined) and hands it here;
`close_all` closes what waits, in order, on whichever thread gets to it
first (the recorder's after a tick, or the one that ended the session), so
that status, pause and withdrawal answer meanwhile.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping

from cleartrace.consent.ledger import Ledger
from cleartrace.consent.removal import close_session, inputs
from cleartrace.store.sessions import SessionHandle, Store

__all__ = ["Closing"]


class Closing:
    """The sessions waiting to be closed. Thread-safe."""

    def __init__(self, store: Store, ledger: Ledger) -> None:
        self._store, self._ledger = store, ledger
        self._waiting: deque[tuple[SessionHandle, Mapping[int, int], int]] = deque()
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        """Whether a session waits or is being closed (none may begin meanwhile:
        it would share the store's connection)."""
        return bool(self._waiting)

    def add(self, session: SessionHandle, by_kind: Mapping[int, int], minimum: int) -> bool:
        """Close `session` later (see `consent.removal.close_session`); whether it
        will be kept (it holds at least `minimum` inputs)."""
        self._waiting.append((session, by_kind, minimum))
        return inputs(by_kind) >= minimum

    def close_all(self) -> bool | None:
        """Close what waits, in order; whether the last one closed was kept
        (None: none waited). Closed even when its last flush failed (e.g. a
        full disk); if closing fails too, the next start recovers it.

        Raises:
            DiskFull, StoreError: a session could not be closed.
        """
        kept = None
        with self._lock:
            while self._waiting:
                session, by_kind, minimum = self._waiting[0]
                try:
                    kept = close_session(self._store, self._ledger, session, by_kind, minimum)
                finally:
                    self._waiting.popleft()
        return kept
