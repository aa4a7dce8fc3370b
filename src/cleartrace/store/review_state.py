"""A person's review of a closed session: approved, or held back for good."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from cleartrace.errors import UsageError
from cleartrace.store import outbox_rows
from cleartrace.store.db import transaction
from cleartrace.store.reading import StoreReader
from cleartrace.store.session_state import REVIEW_STATES, SessionState

__all__ = ["Reviewing"]


class Reviewing(StoreReader):
    """`StoreReader` plus `set_state` and `release`."""

    def set_state(
        self,
        session_id: str,
        state: SessionState,
        record: Callable[[sqlite3.Connection], object] | None = None,
    ) -> bool:
        """Approve or hold a closed session; False if it already was in `state`,
        or another process changed its state meanwhile (a hold pressed while
        the hold period approves it: the hold wins, the approval is not made).

        `record` runs in the same transaction (the ledger's record of it).

        Raises:
            UsageError: the session is still recording, or already uploaded.
            ValueError: `state` is not approved or held (a bug in the caller).
        """
        if state not in REVIEW_STATES:
            raise ValueError(f"a session can be set to {sorted(REVIEW_STATES)}")
        info = self.session(session_id)
        if info.state == SessionState.RECORDING:
            raise UsageError(
                f"session {session_id[:12]} is still being recorded; it can be {state} "
                "once it has ended: 'cleartrace sessions end-current' ends it now"
            )
        if info.state == SessionState.UPLOADED:
            raise UsageError(
                f"session {session_id[:12]} is already uploaded; redact or delete it to have "
                "the organisation's dataset drop it"
            )
        if info.state == state:
            return False
        with transaction(self._conn, self._paths.db) as conn:
            changed = conn.execute(
                "UPDATE sessions SET state=? WHERE id=? AND state=?", (state, info.id, info.state)
            ).rowcount
            if not changed:
                return False
            if state == SessionState.HELD:  # a bundle already built for it does not leave either
                outbox_rows.drop_for_session(conn, info.id)
            if record is not None:
                record(conn)
        return True

    def release(self, session_id: str, record: Callable[[sqlite3.Connection], object]) -> None:
        """Let a detection the upload withholds leave: `record` (the ledger's
        record of it) and the removal of a bundle already built without it
        commit together, so the session is bundled again with it.

        Raises:
            UsageError: the session is being recorded or already uploaded.
        """
        info = self.session(session_id)
        with transaction(self._conn, self._paths.db) as conn:
            # Read again under the write lock: an upload acknowledged since the
            # session was read would leave the ledger saying it went as typed.
            row = conn.execute("SELECT state FROM sessions WHERE id=?", (info.id,)).fetchone()
            state = info.state if row is None else row[0]
            if state in (SessionState.RECORDING, SessionState.UPLOADED):
                raise UsageError(
                    f"session {session_id[:12]} is {state}: only a session waiting for "
                    "upload can have a detection released"
                )
            outbox_rows.drop_for_session(conn, info.id)
            record(conn)
