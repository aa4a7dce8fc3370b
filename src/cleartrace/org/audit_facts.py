"""The consent and compliance facts of one device's verified ledger, for the officer's audit.

`ledger_facts(records)` folds a ledger (oldest first, already verified) into
what `coverage.json` says of a device: which policy versions it consented
to and when, per category the intervals it was consented and recording (a
pause cut out), the pauses, the withdrawals, and counts of the acts the
person or the device took (approvals by the person or by the hold period,
deletions, redactions, personal data left out of uploads, detections
released, uploads, applications excluded).

Counts and times only: a record carries no captured content (consent/records.py
makes sure), and nothing here reads a session id into the result either, so
the facts say what was agreed and honoured, never what anyone did.

Times are the records' own (UTC, milliseconds). As in consent/coverage.py, a
record whose clock went backwards takes effect at the previous record's time,
so the intervals here are the ones ingest applies.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from cleartrace.categories import Category

__all__ = ["ledger_facts"]

_CONSENT_KINDS = {
    "consent.given": "given",
    "consent.refused": "refused",
    "consent.withdrawn": "withdrawn",
}


def _known(names: Any) -> list[str]:
    """The categories a record names that this version knows, in a fixed order."""
    listed = set(names) if isinstance(names, list) else set()
    return [c.value for c in Category if c.value in listed]


class _Intervals:
    """Per category: its consented (and recording) spells and its paused ones, the last open."""

    def __init__(self) -> None:
        self.consented: dict[str, list[dict[str, str | None]]] = {c.value: [] for c in Category}
        self.paused: dict[str, list[dict[str, str | None]]] = {c.value: [] for c in Category}

    def step(self, when: str, before: set[str], after: set[str], was: bool, now: bool) -> None:
        """Move from (consented `before`, paused `was`) to (`after`, `now`) at `when`."""
        for category in Category:
            c = category.value
            old = (c in before, c in before and was)
            new = (c in after, c in after and now)
            if old == new:
                continue
            recording_old, recording_new = old[0] and not old[1], new[0] and not new[1]
            if recording_old and not recording_new:
                self.consented[c][-1]["end"] = when
            if old[1] and not new[1]:
                self.paused[c][-1]["end"] = when
            if recording_new and not recording_old:
                self.consented[c].append({"start": when, "end": None})
            if new[1] and not old[1]:
                self.paused[c].append({"start": when, "end": None})


def ledger_facts(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What `coverage.json` says of one device's verified ledger (see the module docstring).

    `end` None in an interval: still so at the ledger's last record. The
    records' times must be as the verifier admits them (UTC, milliseconds).
    """
    consent: list[dict[str, Any]] = []
    policies: dict[tuple[str, int, str], dict[str, Any]] = {}
    withdrawals: dict[str, list[str]] = {c.value: [] for c in Category}
    intervals = _Intervals()
    counts: Counter[str] = Counter()
    approvals: Counter[str] = Counter({"person": 0, "hold_period": 0})
    spans: Counter[str] = Counter()
    redacted_events = 0
    consented: set[str] = set()
    paused = False
    last_time = ""
    for record in records:
        kind = str(record.get("kind"))
        stamp = str(record["time"])
        # Verified times are UTC with milliseconds, one width: they order as strings.
        if stamp >= last_time:
            last_time = stamp
        when = last_time
        counts[kind] += 1
        before, was = consented, paused
        if kind in _CONSENT_KINDS:
            categories = _known(record.get("categories"))
            policy = record.get("policy") or {}
            ref = {"id": policy.get("id"), "version": policy.get("version")}
            ref["sha256"] = policy.get("sha256")
            consent.append(
                {
                    "seq": record.get("seq"),
                    "time": when,
                    "kind": _CONSENT_KINDS[kind],
                    "categories": categories,
                    "policy": ref,
                }
            )
            key = (str(ref["id"]), int(ref["version"] or 0), str(ref["sha256"]))
            entry = policies.setdefault(key, {**ref, "given": [], "refused": [], "withdrawn": []})
            entry[_CONSENT_KINDS[kind]].append(when)
            if kind == "consent.given":
                consented = consented | set(categories)
            else:
                consented = consented - set(categories)
            if kind == "consent.withdrawn":
                for c in categories:
                    withdrawals[c].append(when)
            intervals.step(when, before, consented, was, paused)
        elif kind == "recording.paused" or kind == "recording.resumed":
            paused = kind == "recording.paused"
            intervals.step(when, before, consented, was, paused)
        elif kind == "session.approved":
            approvals[str(record.get("by"))] += 1
        elif kind == "session.redacted":
            redacted_events += int(record.get("events", 0))
        elif kind == "upload.redacted":
            spans.update({str(k): int(v) for k, v in dict(record.get("spans", {})).items()})
    return {
        "records": len(records),
        "first": str(records[0]["time"]) if records else None,
        "last": last_time or None,
        "consent": consent,
        "policies": list(policies.values()),
        "categories": {
            c.value: {
                "consented": intervals.consented[c.value],
                "paused": intervals.paused[c.value],
                "withdrawn": withdrawals[c.value],
            }
            for c in Category
        },
        "consented_now": sorted(consented),
        "paused_now": paused,
        "apps_excluded": counts["app.excluded"],
        "sessions": counts["session.started"],
        "approvals": dict(approvals),
        "holds": counts["session.held"],
        "deletions": counts["session.deleted"],
        "redactions": {"count": counts["session.redacted"], "events": redacted_events},
        "auto_redactions": dict(sorted(spans.items())),
        "releases": counts["detection.released"],
        "uploads": counts["bundle.uploaded"],
    }
