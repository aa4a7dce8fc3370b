"""The consent history, as the person and an officer see it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cleartrace.consent.ledger import read_records
from cleartrace.consent.verify import VerifyReport, verify_export
from cleartrace.errors import LedgerBroken
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.store.db import connect

__all__ = ["LedgerView", "read_ledger", "view"]


@dataclass(frozen=True, slots=True)
class LedgerView:
    """The consent history and whether it verifies (`broken_at` is the first bad record)."""

    records: list[dict[str, Any]]
    verified: bool
    broken_at: int | None
    reason: str | None


def view(home: Home) -> LedgerView:
    """The ledger and its verification, as an officer would run it on an export."""
    lines = home.ledger.export_lines()  # one read: what is shown is what is verified
    records = [json.loads(line) for line in lines[1:]]
    try:
        report: VerifyReport = verify_export(lines)
    except LedgerBroken as exc:
        return LedgerView(records, False, exc.seq, str(exc))
    return LedgerView(records, report.records == len(records), None, None)


def read_ledger(paths: Paths) -> list[dict[str, Any]]:
    """The ledger's records, read without any key (they are public, signed
    data); none before the store exists, which this never creates."""
    if not paths.db.exists():
        return []
    conn = connect(paths.db)
    try:
        return read_records(conn)
    finally:
        conn.close()
