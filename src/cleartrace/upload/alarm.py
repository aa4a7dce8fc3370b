"""The ledger's alarm that this device's store went back in time.

When the collector has witnessed a ledger head this device's ledger does not
hold (the store was restored from an old backup, or rewritten), the uploader
ledgers `ledger.rollback` with both heads and uploads nothing more.
`cleartrace status` and `outbox list` show the latest such record, so the
person learns why nothing leaves and whom to ask. Light on purpose: status
reads it without loading the upload machinery.

An alarm stands until a later `bundle.uploaded`: the collector accepted a
bundle built on a head it witnessed and this ledger holds, so whatever the
officer did about it (reset the device's head, a new collector) worked and
uploads go on. Enrolling again does not clear it: the collector keeps the
device's witnessed head across enrolments, so nothing is resolved until an
upload succeeds.

Whoever can answer as the collector chooses the head it reports, and each
alarm is a record the device signs; so while an alarm stands, a new one is
written only for a head above every standing one (the same head, another
hash at the same seq, or a lower head add nothing for the officer), and at
most one per upload pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["ROLLBACK_DETECTED", "alarm_text", "ledger_alarm", "worth_alarming"]

ROLLBACK_DETECTED = "ledger.rollback"
#: The record that shows uploads work again, clearing the alarms before it.
_RESOLVED = "bundle.uploaded"


def _standing(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The rollback alarms after the latest successful upload, oldest first."""
    standing: list[Mapping[str, Any]] = []
    for record in records:
        kind = record.get("kind")
        if kind == ROLLBACK_DETECTED:
            standing.append(record)
        elif kind == _RESOLVED:
            standing.clear()
    return standing


def ledger_alarm(records: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The latest standing rollback alarm among `records` (seq, time, both heads), or None."""
    standing = _standing(records)
    if not standing:
        return None
    latest = standing[-1]
    return {k: latest[k] for k in ("seq", "time", "kind", "witnessed", "local")}


def worth_alarming(records: Iterable[Mapping[str, Any]], witnessed_seq: int) -> bool:
    """Whether a head the collector witnessed at `witnessed_seq` deserves a new
    alarm: only above every standing alarm's head."""
    return all(int(a["witnessed"]["seq"]) < witnessed_seq for a in _standing(records))


def alarm_text(alarm: Mapping[str, Any]) -> str:
    """One line for people: what happened and what to do."""
    return (
        f"uploads stopped {alarm['time']}: the collector witnessed ledger record "
        f"{alarm['witnessed']['seq']}, this device's ledger ended at record "
        f"{alarm['local']['seq']} (restored from an old backup, or rewritten); "
        "ask your privacy officer"
    )
