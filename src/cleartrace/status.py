"""`cleartrace status`: one snapshot of what ClearTrace is doing, for CLI and tray."""

from __future__ import annotations

import os
from typing import Any

from cleartrace import __version__
from cleartrace.capture.display import display_support
from cleartrace.consent.policy import Policy
from cleartrace.consent.signed_policy import active_policy
from cleartrace.consent.state import consent_from_records
from cleartrace.control import request
from cleartrace.errors import ClearTraceError, RecorderNotRunning
from cleartrace.paths import Paths, check_home
from cleartrace.store import ledger_rows
from cleartrace.store.db import connect
from cleartrace.store.keys import describe_keystore
from cleartrace.store.reading import count_sessions
from cleartrace.upload.alarm import ledger_alarm

__all__ = ["collect_status"]


def collect_status(paths: Paths) -> dict[str, Any]:
    """Consent, recorder state, store, key storage, display support, and the
    latest ledger alarm (`ledger_alarm`: a restored old store, upload/alarm.py).

    Reads only: it never creates a home, a key or a store.

    Raises:
        HomeError: the home lies in another user's directory (see `check_home`).
    """
    check_home(paths.home)
    ok, display = display_support(os.environ)
    out: dict[str, Any] = {
        "version": __version__,
        "home": str(paths.home),
        "display": {"can_record": ok, "detail": display},
        "key_storage": describe_keystore(paths),
    }
    out["consent"], out["sessions"], out["ledger_alarm"] = _read_store(paths)
    try:
        rec = request(paths.socket, "status", timeout=2.0)["status"]
    except RecorderNotRunning:
        rec = None
    except ClearTraceError as exc:
        rec = {"state": "unreachable", "detail": str(exc)}
    out["recorder"] = rec
    if rec is not None:
        out["state"] = rec["state"]
    elif not ok:
        out["state"] = "cannot record"
    else:
        out["state"] = "not running"
    out["hooks"] = [] if rec is None else rec.get("hooks", [])
    return out


def _read_store(paths: Paths) -> tuple[dict[str, str], int | None, dict[str, Any] | None]:
    db = paths.db
    if not db.exists():
        return {}, None, None
    try:
        policy: Policy | None = active_policy(paths)
    except ClearTraceError:  # an installed policy that does not verify records nothing
        policy = None
    conn = connect(db)
    try:
        records = ledger_rows.records(conn, db)
        n = count_sessions(conn, db)
    finally:
        conn.close()
    return consent_from_records(records, policy).as_dict(), int(n), ledger_alarm(records)
