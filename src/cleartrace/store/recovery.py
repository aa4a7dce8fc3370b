"""Opening after a crash: sessions whose writer died are closed, and deletions
a crash interrupted are finished."""

from __future__ import annotations

import logging

from cleartrace.errors import DiskFull
from cleartrace.store import deletion
from cleartrace.store.compaction import Compactor
from cleartrace.store.db import transaction, translate_errors
from cleartrace.store.reading import WRITER_SQL
from cleartrace.store.session_state import SessionState
from cleartrace.store.writers import writer_alive

__all__ = ["Recovering"]

log = logging.getLogger(__name__)


class Recovering(Compactor):
    """`Compactor` plus `recover`, which `Store.open` runs."""

    def recover(self) -> list[str]:
        """Close sessions whose writer died (kill -9, power loss); returns their ids.

        Sessions of a running writer (same pid and, on Linux, same boot and
        start time: a pid reused after a reboot does not count) are left alone.

        Raises:
            StoreCorrupt: a crashed session's key or chunks do not open.
            DiskFull: no room to compact; the session stays open for next time.
        """
        with translate_errors(self._paths.db):
            unfinished = deletion.pending(self._conn)
        if unfinished:
            try:
                with transaction(self._conn, self._paths.db) as conn:
                    deletion.finish(conn)
                log.info("finished %d interrupted session deletions", len(unfinished))
            except DiskFull:
                # Their keys are destroyed and no reader shows them: only the
                # space waits. Refusing to open would lock the person out.
                log.warning(
                    "%d deleted sessions wait for disk space to be removed", len(unfinished)
                )
                unfinished = []
        with translate_errors(self._paths.db):
            rows = self._conn.execute(
                WRITER_SQL + "s.state=?", (SessionState.RECORDING,)
            ).fetchall()
        closed = []
        for session_id, _state, started_ns, anchor_mono, pid, token in rows:
            if writer_alive(pid, token):
                continue
            self._compact(session_id, self._session_key(session_id))
            sql = "SELECT max(last_mono_ns) FROM chunks WHERE session_id=?"
            with translate_errors(self._paths.db):
                (last,) = self._conn.execute(sql, (session_id,)).fetchone()
            self._finish(session_id, started_ns + max(0, (last or anchor_mono) - anchor_mono))
            log.info("closed interrupted session %s", session_id[:12])
            closed.append(session_id)
        if closed or unfinished or self.old_pages_remain():
            self._checkpoint()
        return closed
