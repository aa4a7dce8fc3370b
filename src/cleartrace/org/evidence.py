"""The works-council / DPA evidence pack of an audit: REPORT_DIR/evidence/.

An organisation that deploys ClearTrace has to document the processing (GDPR
Art. 30), assess it (the DPIA of Art. 35) and, in many countries, agree it
with its works council. Those documents are usually written by hand and drift
from what the software does. Here they are generated from the two things the
audit can prove: the signed policy (what people were told and consented to,
verified with the organisation's signature) and the ledgers the audit just
verified (which policy versions the devices consented under, withdrawals,
deletions, redactions). Every statement is one of those facts, or a fixed
description of a safeguard the code implements; nothing is filled in that
the organisation did not write, and what it did not state is said to be
missing.

`evidence_pack(signed, coverage)` is pure: the signed policy and the audit's
coverage facts in, the files' bytes out (`art30.md`, `dpia-inputs.md`,
`works-agreement-annex.md` in plain language, `evidence.json` for machines).
`write_evidence` writes them. Counts only: the facts of the fleet are device
counts per policy version and category, never a person's activity, and only
when the audit verified the ledgers of at least k devices (the policy's `report_min_group`, as
in the report): below that, every fleet figure is null in evidence.json and
"fewer than k devices" in the documents, since a count over two people is
nearly a count about one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cleartrace.categories import Category
from cleartrace.consent.notice import Notice
from cleartrace.consent.policy import DEFAULT_MIN_GROUP, Policy
from cleartrace.consent.signed_policy import SignedPolicy
from cleartrace.org.evidence_text import annex, art30, dpia
from cleartrace.paths import write_private_bytes

__all__ = [
    "EVIDENCE_FILES",
    "EVIDENCE_TYPE",
    "EVIDENCE_VERSION",
    "evidence_facts",
    "evidence_pack",
    "write_evidence",
]

EVIDENCE_TYPE = "cleartrace-evidence"
EVIDENCE_VERSION = 1
EVIDENCE_FILES = ("art30.md", "dpia-inputs.md", "works-agreement-annex.md", "evidence.json")
#: What the audit prints and coverage.json says when no policy was given.
NO_POLICY_NOTE = (
    "no evidence pack: give --policy with the organisation's signed policy file to write "
    "the Art. 30 record, the DPIA inputs and the works-agreement annex"
)

#: What each category stores, in the words the consent dialog uses (ui/texts.py).
CAPTURED = {
    Category.KEYS: (
        "Keys you press",
        "the keys pressed, so the text typed, and the keyboard layout",
    ),
    Category.MOUSE_MOVE: ("Mouse movement", "where the pointer is, up to {hz} times a second"),
    Category.CLICKS: (
        "Mouse clicks",
        "which mouse button is pressed and where, and the screens' sizes",
    ),
    Category.SCROLL: ("Scrolling", "each scroll step and where the pointer was"),
    Category.APP_FOCUS: (
        "Application in front",
        "the application in front and where its window is, when it changes",
    ),
    Category.WINDOW_TITLES: (
        "Window titles",
        "the focused window's title, which can name a document or an e-mail",
    ),
    Category.TYPING_RHYTHM: (
        "Typing rhythm",
        "nothing more: the exact timing of the keys pressed, which identifies a person, is "
        "received as typed; without it, key events arrive evenly spaced within each typing run",
    ),
}


def _security(policy: Policy) -> dict[str, Any]:
    """The safeguards as the code implements them, with the policy's own settings."""
    return {
        "at_rest": "AES-256-GCM per chunk (zstd-compressed) under per-session keys wrapped by "
        "the device's master key; deleting a session destroys its key",
        "bundle_suite": None if policy.org_key is None else policy.org_key.suite,
        "bundle_signature": "Ed25519 by the device key",
        "ledger": "Ed25519-signed records, SHA-256 hash chain over RFC 8785 canonical JSON, "
        "heads witnessed and signed by the collector",
        "auto_redact": [c.value for c in policy.withheld],
        "exclusions": list(policy.exclusions),
        "hold_days": policy.hold_days,
        "hold_days_min": policy.hold_days_min,
        "hold_days_max": policy.hold_days_max,
        "mouse_move_hz": policy.mouse_move_hz,
    }


def _fleet(coverage: Mapping[str, Any], policy: Policy, k: int) -> dict[str, Any]:
    """Device counts from the verified ledgers: per policy version, per category, acts;
    withheld (`_withheld`) when fewer than `k` devices' ledgers were verified."""
    devices = coverage.get("devices", {})
    verified = [d["facts"] for d in devices.values() if d.get("facts") is not None]
    policies: dict[tuple[str, int, str], dict[str, Any]] = {}
    consented: Counter[str] = Counter()
    withdrawals: Counter[str] = Counter()
    spans: Counter[str] = Counter()
    acts: Counter[str] = Counter()
    for facts in verified:
        for ref in facts["policies"]:
            key = (str(ref["id"]), int(ref["version"] or 0), str(ref["sha256"]))
            entry = policies.setdefault(
                key,
                {
                    "id": ref["id"],
                    "version": ref["version"],
                    "sha256": ref["sha256"],
                    "this_policy": ref["sha256"] == policy.sha256,
                    "devices_given": 0,
                    "devices_refused": 0,
                    "devices_withdrawn": 0,
                },
            )
            for what in ("given", "refused", "withdrawn"):
                entry[f"devices_{what}"] += bool(ref[what])
        consented.update(facts["consented_now"])
        withdrawals.update(c for c, times in facts["categories"].items() if times["withdrawn"])
        spans.update(facts["auto_redactions"])
        acts.update(
            deletions=facts["deletions"],
            redactions=facts["redactions"]["count"],
            approvals_person=facts["approvals"].get("person", 0),
            approvals_hold_period=facts["approvals"].get("hold_period", 0),
            paused_now=int(facts["paused_now"]),
        )
    fleet = {
        "k": k,
        # The counts are sums over the verified ledgers: over fewer than k of them
        # they are about fewer than k people, however many devices the store holds.
        "shown": len(verified) >= k,
        "devices": len(devices),
        "devices_verified": len(verified),
        "policies": sorted(policies.values(), key=lambda p: (str(p["id"]), p["version"])),
        "consented_now": dict(sorted(consented.items())),
        "withdrawals": dict(sorted(withdrawals.items())),
        "deletions": acts["deletions"],
        "redactions": acts["redactions"],
        "approvals": {
            "person": acts["approvals_person"],
            "hold_period": acts["approvals_hold_period"],
        },
        "paused_now": acts["paused_now"],
        "auto_redactions": dict(sorted(spans.items())),
    }
    return fleet if fleet["shown"] else _withheld(fleet)


def _withheld(fleet: dict[str, Any]) -> dict[str, Any]:
    """The fleet facts of fewer than k devices: every count null, every per-category
    count left out; which policy versions were consented under stays (not a count)."""
    counts = ("devices", "devices_verified", "deletions", "redactions", "paused_now")
    return {
        **fleet,
        **dict.fromkeys(counts),
        "policies": [
            {**p, "devices_given": None, "devices_refused": None, "devices_withdrawn": None}
            for p in fleet["policies"]
        ],
        "consented_now": {},
        "withdrawals": {},
        "auto_redactions": {},
        "approvals": {"person": None, "hold_period": None},
    }


def evidence_facts(
    signed: SignedPolicy, coverage: Mapping[str, Any], k: int = DEFAULT_MIN_GROUP
) -> dict[str, Any]:
    """What evidence.json holds, and what the Markdown files are written from; fleet
    counts only for at least `k` devices."""
    policy = signed.policy
    notice: Notice | None = policy.notice
    return {
        "v": EVIDENCE_VERSION,
        "type": EVIDENCE_TYPE,
        "policy": {
            "reference": policy.reference(),
            "signer": signed.fingerprint,
            "purpose": policy.purpose,
            "collector": policy.collector,
        },
        "notice": None if notice is None else notice.as_dict(),
        "categories": [c.value for c in policy.categories],
        "captured": {
            c.value: CAPTURED[c][1].format(hz=policy.mouse_move_hz) for c in policy.categories
        },
        "retention": {
            "organisation": None if notice is None else notice.retention,
            "hold_days": policy.hold_days,
            "keep_uploaded_days": policy.keep_uploaded_days,
        },
        "security": _security(policy),
        "fleet": _fleet(coverage, policy, k),
    }


def evidence_pack(
    signed: SignedPolicy, coverage: Mapping[str, Any], k: int = DEFAULT_MIN_GROUP
) -> dict[str, bytes]:
    """The evidence files by name (EVIDENCE_FILES), from the policy and the audit's facts
    (fleet counts only for at least `k` devices)."""
    facts = evidence_facts(signed, coverage, k)
    labels = {c.value: CAPTURED[c][0] for c in Category}
    return {
        "art30.md": art30(facts, labels).encode("utf-8"),
        "dpia-inputs.md": dpia(facts, labels).encode("utf-8"),
        "works-agreement-annex.md": annex(facts, labels).encode("utf-8"),
        "evidence.json": (json.dumps(facts, indent=2, sort_keys=True) + "\n").encode("utf-8"),
    }


def write_evidence(
    out: Path, signed: SignedPolicy | None, coverage: Mapping[str, Any], k: int
) -> dict[str, Any]:
    """Write REPORT_DIR/evidence/ (before the report is signed, so the signature covers it);
    what coverage.json says of it: `{written, note}`, and the policy named when written.

    Raises:
        DiskFull: no room for the files.
    """
    if signed is None:
        return {"written": False, "note": NO_POLICY_NOTE}
    folder = out / "evidence"
    folder.mkdir(exist_ok=True)
    for name, data in evidence_pack(signed, coverage, k).items():
        write_private_bytes(folder / name, data, "evidence file")
    return {
        "written": True,
        "note": f"evidence pack in {folder}",
        "policy": signed.policy.reference(),
    }
