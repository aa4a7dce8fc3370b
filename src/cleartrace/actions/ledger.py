"""The consent history, as the person and an officer see it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cleartrace.consent.verify import VerifyReport, verify_export
from cleartrace.errors import LedgerBroken
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.store import ledger_rows

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
    lines, records = home.ledger.export_view()  # one read: what is shown is what is verified
    try:
        report: VerifyReport = verify_export(lines)
    except LedgerBroken as exc:
        return LedgerView(records, False, exc.seq, str(exc))
    return LedgerView(records, report.records == len(records), None, None)


def read_ledger(paths: Paths) -> list[dict[str, Any]]:
    """The ledger's records, read without any key (they are public, signed
    data); none before the store exists, which this never creates."""
    return ledger_rows.records_in(paths.db)
