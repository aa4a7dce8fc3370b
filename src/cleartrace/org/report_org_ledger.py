"""The report's "who accessed what, when": the organisation's own ledgers, as verified by
the audit (coverage.json `org_ledger`, written by org/org_ledger_audit.py).

For each chain (the collector's: enrolment tokens and devices admitted; the
officer side's: ingest runs, audits, subject exports and erasures) the report
says whether it verifies, and if not its first bad record and why, then its
acts in time order in plain words. A record carries ids, counts and digests,
never content, and so does every sentence made of it; a subject's counts are
left out (one person's activity volume), and so are an ingest run's (a run
may read one person's upload only); the audit's device count is given only for
a fleet of at least k devices, as every fleet figure. A long chain shows its
last `MAX_ACTS` acts and says how many are left out: coverage.json and the
chain's copy in REPORT_DIR/org-ledger/ hold them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cleartrace.org.report_blocks import Block, Heading, Para, Table

__all__ = ["MAX_ACTS", "act_words", "org_ledger_blocks"]

#: The acts of one chain the report lists (the latest ones): a page stays readable.
MAX_ACTS = 200
_WHAT = {
    "collector": "the collector's: enrolment tokens issued and devices admitted, signed by its "
    "witness key",
    "officer": "the officer side's: ingest runs, audits, subject exports and erasures, signed "
    "by the organisation's ledger key (KEYS/ledger.key)",
}


def _short(fingerprint: str) -> str:
    """A device fingerprint cut to 12 hex digits (the device table gives it whole)."""
    return "sha256:" + fingerprint.removeprefix("sha256:")[:12] + "…"


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def act_words(act: Mapping[str, Any], shown: bool = True, k: int = 5) -> str:
    """One act in plain words, from the fields its record carries.

    A subject's export or erasure, and an ingest run, are said without their bundle
    and row counts: they are, or may be, one person's activity volume. The audit's
    device count spans the fleet and is said only when it is `shown` (at least `k`
    devices), as every fleet figure.
    """
    kind, subject = act.get("kind"), act.get("subject")
    fewer = f"its counts are not shown: fewer than {k} devices"
    if kind == "tokens.issued":
        n = int(act.get("tokens", 0))
        return "an enrolment token was issued" if n == 1 else f"{n} enrolment tokens were issued"
    if kind == "device.admitted":
        return f"device {_short(str(act.get('device')))} was admitted (subject {subject})"
    if kind == "ingest.run":
        # A run reads what was uploaded since the one before, which may be one
        # person's session: its counts would be that person's activity, whatever
        # the fleet's size. coverage.json keeps them.
        return "ingest ran (its bundle and row counts are in coverage.json only)"
    if kind == "audit.run":
        if not shown:
            return f"an audit ran ({fewer})"
        return f"an audit ran over {_plural(act.get('devices', 0), 'device', 'devices')}"
    if kind == "subject.exported":
        return f"the data held about subject {subject} was exported"
    if kind == "subject.erased":
        return f"subject {subject} was erased: their bundles and dataset rows were removed"
    return str(kind)


def _status(chain: Mapping[str, Any]) -> str:
    if chain["status"] == "intact":
        return f"intact: {_plural(chain.get('records', 0), 'record', 'records')}"
    return (
        f"first bad record {chain.get('first_bad_seq')}: {chain.get('reason')} ({chain['detail']})"
    )


def _acts(name: str, chain: Mapping[str, Any], shown: bool, k: int) -> list[Block]:
    acts = sorted(chain.get("acts", []), key=lambda a: (str(a.get("time")), a.get("seq", 0)))
    caption = f"{name}: its acts in time order"
    if chain["status"] != "intact":
        caption += f", those before its first bad record ({chain.get('first_bad_seq')})"
    blocks: list[Block] = []
    if len(acts) > MAX_ACTS:
        left = len(acts) - MAX_ACTS
        blocks.append(
            Para(
                f"The {name} chain: the last {MAX_ACTS} of {len(acts)} acts; {left} earlier "
                f"ones are left out here (coverage.json and {chain['file']} hold them all)."
            )
        )
        acts = acts[-MAX_ACTS:]
    rows = [
        [
            str(a.get("seq")),
            str(a.get("time")),
            act_words(a, shown, k),
            str(a["digest"])[:16] + "…" if a.get("digest") else "",
        ]
        for a in acts
    ]
    blocks.append(Table(caption, ["record", "time", "act", "binds (SHA-256)"], rows, "no acts"))
    return blocks


def org_ledger_blocks(coverage: Mapping[str, Any], k: int) -> list[Block]:
    """The report's section on the org ledgers; fleet counts in it only for at least
    `k` devices audited."""
    shown = len(coverage["devices"]) >= k
    org = coverage.get("org_ledger") or {}
    chains: Mapping[str, Mapping[str, Any]] = org.get("chains") or {}
    blocks: list[Block] = [Heading("Who accessed what, when: the organisation's own ledgers")]
    if not chains:
        blocks.append(
            Para(
                "no org ledger was given to this audit: the officer side's is the one next to "
                "--dataset (or --org-ledger), the collector's is read beside --witness-key."
            )
        )
        return blocks
    blocks.append(
        Para(
            "Every act of the organisation is a signed record in a hash chain, in the device "
            "ledgers' format; this audit re-verified each chain. Records hold ids, counts "
            "and digests, never content. "
            + " ".join(f"The {n} chain is {_WHAT.get(n, n)}." for n in sorted(chains))
        )
    )
    blocks.append(
        Table(
            "The org ledgers, re-verified",
            ["org ledger", "status", "signed by", "copy", "verification"],
            [
                [name, c["status"], str(c.get("signer", "")), c["file"], _status(c)]
                for name, c in sorted(chains.items())
            ],
        )
    )
    erasures = org.get("erasures") or []
    if erasures:
        blocks.append(
            Table(
                "Erasure receipts in the store (each must be recorded by a subject.erased act)",
                ["subject", "status"],
                [[str(e["subject"]), str(e["status"])] for e in erasures],
            )
        )
    for name, chain in sorted(chains.items()):
        blocks += _acts(name, chain, shown, k)
    return blocks
