"""The ledger's alarm that this device's store went back in time.

When the collector has witnessed a ledger head this device's ledger does not
hold (the store was restored from an old backup, or rewritten), the uploader
ledgers `ledger.rollback` with both heads and uploads nothing more.
`cleartrace status` and `outbox list` show the latest such record, so the
person learns why nothing leaves and whom to ask. Light on purpose: status
reads it without loading the upload machinery.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["ROLLBACK_DETECTED", "alarm_text", "ledger_alarm"]

ROLLBACK_DETECTED = "ledger.rollback"


def ledger_alarm(records: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The latest rollback alarm among `records` (seq, time, both heads), or None."""
    latest = None
    for record in records:
        if record.get("kind") == ROLLBACK_DETECTED:
            latest = record
    if latest is None:
        return None
    return {k: latest[k] for k in ("seq", "time", "kind", "witnessed", "local")}


def alarm_text(alarm: Mapping[str, Any]) -> str:
    """One line for people: what happened and what to do."""
    return (
        f"uploads stopped {alarm['time']}: the collector witnessed ledger record "
        f"{alarm['witnessed']['seq']}, this device's ledger ended at record "
        f"{alarm['local']['seq']} (restored from an old backup, or rewritten); "
        "ask your privacy officer"
    )
