"""What the officer's audit report says, built once from coverage.json's content
and rendered twice: as HTML (org/report_html.py) and as PDF (org/report_pdf.py).

`build(coverage, k)` turns the dict `org/audit.py` writes into a list of
blocks (headings, paragraphs, tables, charts), so both renderings hold the
same content (the org ledgers' part: org/report_org_ledger.py). Only consent and
compliance facts go in: no record counts,
session counts, row counts per device or record times of anything but
consent, pauses and withdrawals, so the report shows no per-person activity
volume, working hours or productivity-like figure. Per-device consent facts
are shown per device, under its pseudonymous fingerprint: that is what the
officer audits. A fleet aggregate that counts devices is shown only when the
fleet holds at least `k` devices; otherwise it says "fewer than k devices".

Strings are kept raw here; each renderer escapes every one.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cleartrace.categories import Category
from cleartrace.org.audit_policy import FROM_DEFAULT, FROM_FLAG, FROM_POLICY
from cleartrace.org.report_blocks import Block, Chart, Heading, Para, Table
from cleartrace.org.report_charts import (
    Interval,
    Timeline,
    fleet_consent_chart,
    timeline_chart,
)
from cleartrace.org.report_org_ledger import org_ledger_blocks

__all__ = ["DEFAULT_K", "Block", "Chart", "Heading", "Para", "Report", "Table", "build"]

#: The smallest group a fleet aggregate is shown for (the policy's default).
DEFAULT_K = 5
#: Devices per timeline picture: a picture stays readable on a page.
_PER_CHART = 25
_CATEGORIES = [c.value for c in Category]
_INTACT = "intact"


@dataclass
class Report:
    title: str
    blocks: list[Block] = field(default_factory=list)


@functools.lru_cache(maxsize=4096)
def _time(text: str) -> datetime:
    """A ledger time; cached, as a pause starts and ends every category's spell at once."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _short(fp: str) -> str:
    """A fingerprint short enough for a chart label (the tables give it whole)."""
    return fp.removeprefix("sha256:")[:12]


def _facts(coverage: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Device -> its facts, for the devices whose chain is intact."""
    return {fp: d["facts"] for fp, d in sorted(coverage["devices"].items()) if d.get("facts")}


def _span(coverage: Mapping[str, Any]) -> tuple[datetime, datetime] | None:
    """The time axis: the earliest consent act to the latest record of any device."""
    times = [
        _time(t)
        for f in _facts(coverage).values()
        for t in [*(c["time"] for c in f["consent"]), f["last"]]
        if t
    ]
    if not times:
        return None
    start, end = min(times), max(times)
    if end <= start:
        end = start + timedelta(hours=1)
    return start, end


def _lanes(facts: Mapping[str, Any], end: datetime) -> dict[str, dict[str, list[Interval]]]:
    """Per category the consented, paused and withdrawn spells (withdrawn: from the
    withdrawal to the next consent, or to the end of the axis)."""
    lanes: dict[str, dict[str, list[Interval]]] = {}
    for category, spells in facts["categories"].items():
        consented = [
            Interval(_time(s["start"]), end if s["end"] is None else _time(s["end"]))
            for s in spells["consented"]
        ]
        paused = [
            Interval(_time(s["start"]), end if s["end"] is None else _time(s["end"]))
            for s in spells["paused"]
        ]
        starts = sorted(i.start for i in consented + paused)
        withdrawn = []
        for when in spells["withdrawn"]:
            at = _time(when)
            later = [s for s in starts if s > at]
            withdrawn.append(Interval(at, later[0] if later else end))
        lanes[category] = {"consented": consented, "paused": paused, "withdrawn": withdrawn}
    return lanes


def _fleet_series(
    facts: Mapping[str, Mapping[str, Any]],
) -> dict[str, list[tuple[datetime, int]]]:
    """Per category, the number of devices consented and recording after each change."""
    series: dict[str, list[tuple[datetime, int]]] = {}
    for category in _CATEGORIES:
        changes: list[tuple[datetime, int]] = []
        for f in facts.values():
            for s in f["categories"][category]["consented"]:
                changes.append((_time(s["start"]), 1))
                if s["end"] is not None:
                    changes.append((_time(s["end"]), -1))
        steps: list[tuple[datetime, int]] = []
        count = 0
        for when, delta in sorted(changes):
            count += delta
            if steps and steps[-1][0] == when:
                steps[-1] = (when, count)
            else:
                steps.append((when, count))
        series[category] = steps
    return series


def _count(n: int, group: int, k: int) -> str:
    """A count of devices in a group of `group` devices: shown when the group has >= k."""
    return str(n) if group >= k else f"fewer than {k} devices"


#: Where the report's k came from, as the summary says it (coverage.json `k.source`).
_K_SOURCE = {
    FROM_POLICY: "k set by the signed policy",
    FROM_FLAG: "k given on the command line, never below the policy's",
    FROM_DEFAULT: "the default k: no policy was given",
}


def _summary(coverage: Mapping[str, Any], k: int) -> list[Block]:
    devices = coverage["devices"]
    n = len(devices)
    facts = _facts(coverage)
    intact = sum(d["chain"]["status"] == _INTACT for d in devices.values())
    rows = [
        ["devices audited", _count(n, n, k)],
        ["ledgers intact up to their witnessed head", _count(intact, n, k)],
        ["ledgers broken or unproven", _count(n - intact, n, k)],
        ["bundles rejected", str(len(coverage["rejected_bundles"]))],
    ]
    for category in _CATEGORIES:
        now = sum(category in f["consented_now"] for f in facts.values())
        rows.append([f"devices consenting to {category} now", _count(now, n, k)])
    withdrawals = sum(
        len(f["categories"][c]["withdrawn"]) for f in facts.values() for c in _CATEGORIES
    )
    rows.append(["withdrawals of a category", _count(withdrawals, n, k)])
    proof = coverage.get("proof")
    if proof is not None:
        totals = proof["totals"]
        rows.append(["dataset rows outside consent (violations)", str(totals["violations"])])
        rows.append(["dataset files read", str(totals["files"])])
    verdict = "everything holds" if coverage["ok"] else "PROBLEMS FOUND: see below"
    blocks: list[Block] = [
        Para(
            f"Audit of the store {coverage['store']}, run {coverage['created']}: {verdict}. "
            f"Fleet figures that count devices are shown only for groups of at least {k} "
            f"devices ({_K_SOURCE.get(str((coverage.get('k') or {}).get('source')), 'k given')}). "
            "coverage.json in this directory is the machine-readable source."
        ),
        Table("Fleet summary", ["figure", "value"], rows),
    ]
    policies: dict[tuple[str, str, str], int] = {}
    for f in facts.values():
        for p in f["policies"]:
            if p["given"] and (len(p["withdrawn"]) < len(p["given"])):
                key = (str(p["id"]), str(p["version"]), str(p["sha256"]))
                policies[key] = policies.get(key, 0) + 1
    blocks.append(
        Table(
            "Policy versions in force (consent given and not withdrawn under them)",
            ["policy", "version", "sha256", "devices"],
            [[i, v, h, _count(c, n, k)] for (i, v, h), c in sorted(policies.items())],
        )
    )
    span = _span(coverage)
    if span is not None and n >= k:
        blocks.append(
            Chart(
                "Devices consented and recording, per category, across the fleet over time",
                fleet_consent_chart(_fleet_series(facts), *span),
            )
        )
    elif span is not None:
        blocks.append(
            Para(f"Consent across the fleet over time: not shown, fewer than {k} devices.")
        )
    return blocks


def _devices(coverage: Mapping[str, Any]) -> list[Block]:
    devices = coverage["devices"]
    rows = [
        [
            fp,
            str(d["subject"] or ""),
            d["chain"]["status"],
            "" if d["chain"]["first_bad_seq"] is None else str(d["chain"]["first_bad_seq"]),
            ", ".join(d["facts"]["consented_now"]) if d.get("facts") else "",
            ("yes" if d["facts"]["paused_now"] else "no") if d.get("facts") else "",
        ]
        for fp, d in sorted(devices.items())
    ]
    blocks: list[Block] = [
        Heading("Devices"),
        Table(
            "Each device's ledger, re-verified against the head its collector witnessed",
            ["device", "subject", "chain", "first bad record", "consented now", "paused now"],
            rows,
        ),
    ]
    facts, span = _facts(coverage), _span(coverage)
    if span is not None:
        timelines = [Timeline(_short(fp), _lanes(f, span[1])) for fp, f in facts.items()]
        for i in range(0, len(timelines), _PER_CHART):
            part = timelines[i : i + _PER_CHART]
            caption = "Consent timeline: consented, paused and withdrawn spells per category"
            if len(timelines) > _PER_CHART:
                caption += f" (devices {i + 1} to {i + len(part)} of {len(timelines)})"
            if len(timelines) > 1:
                caption += "; each band is one device, its lanes top to bottom: " + ", ".join(
                    _CATEGORIES
                )
            blocks.append(Chart(caption, timeline_chart(part, _CATEGORIES, *span)))
    consent_rows = [
        [
            fp,
            c["time"],
            c["kind"],
            ", ".join(c["categories"]),
            f"{c['policy']['id']} v{c['policy']['version']}",
        ]
        for fp, f in facts.items()
        for c in f["consent"]
    ]
    blocks.append(
        Table(
            "Consent given, refused and withdrawn",
            ["device", "time", "act", "categories", "policy"],
            consent_rows,
        )
    )
    return blocks


_VIOLATION = ("device", "session", "bundle", "file", "row", "time", "category", "rule", "record")


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def _record(seq: object) -> str:
    """The ledger record a violation contradicts; none when consent was never given."""
    return "none: consent never given" if seq is None else str(seq)


def _compliance(coverage: Mapping[str, Any]) -> list[Block]:
    facts = _facts(coverage)
    rows = [
        [
            fp,
            str(f["approvals"].get("person", 0)),
            str(f["approvals"].get("hold_period", 0)),
            str(f["deletions"]),
            str(f["redactions"]["count"]),
            ", ".join(f"{kind} {n}" for kind, n in f["auto_redactions"].items()) or "none",
            str(f["releases"]),
            str(f["uploads"]),
            str(f["apps_excluded"]),
        ]
        for fp, f in facts.items()
    ]
    blocks: list[Block] = [
        Heading("What each device's person decided and the device honoured"),
        Table(
            "Approvals (by the person / by the hold period running out), deletions, "
            "redactions, personal data left out of uploads, detections released, uploads, "
            "applications excluded",
            [
                "device",
                "approved by person",
                "approved by hold period",
                "deletions",
                "redactions",
                "auto-redactions",
                "releases",
                "uploads",
                "apps excluded",
            ],
            rows,
        ),
        Heading("Rejected bundles"),
        Table(
            "Bundles that could not be used, and why",
            ["bundle", "device", "reason", "detail"],
            [
                [str(r["bundle"]), str(r["device"] or ""), str(r["reason"]), str(r["detail"])]
                for r in coverage["rejected_bundles"]
            ],
        ),
    ]
    proof = coverage.get("proof")
    if proof is not None:
        totals = proof["totals"]
        listed = proof["violations"]
        blocks += [
            Heading("Dataset coverage proof"),
            Para(
                f"{totals['violations']} violation(s) in {totals['files']} dataset file(s); "
                f"{len(listed)} listed. Each names the ledger record the row contradicts."
            ),
            Table(
                "Violations per device",
                ["device", "violations"],
                [[fp, str(d["violations"])] for fp, d in proof["devices"].items()],
            ),
            Table(
                "Violations",
                [*_VIOLATION[:-1], "ledger record"],
                [
                    [*(_cell(v.get(key)) for key in _VIOLATION[:-1]), _record(v.get("record"))]
                    for v in listed
                ],
            ),
        ]
    return blocks


def build(coverage: Mapping[str, Any], k: int = DEFAULT_K) -> Report:
    """The report's blocks for `coverage` (the dict coverage.json holds)."""
    report = Report("ClearTrace consent audit")
    report.blocks += _summary(coverage, k)
    report.blocks += _devices(coverage)
    report.blocks += _compliance(coverage)
    report.blocks += org_ledger_blocks(coverage, k)
    return report
