"""The works-council / DPA evidence pack, from the signed policy and the verified ledgers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.categories import Category
from cleartrace.consent.records import GENESIS, make_record, record_hash, sign_record
from cleartrace.consent.signed_policy import SignedPolicy, active_policy
from cleartrace.consent.state import give, withdraw
from cleartrace.home import Home
from cleartrace.org.audit_facts import ledger_facts
from cleartrace.org.evidence import EVIDENCE_FILES, evidence_pack
from cleartrace.org.keys import generate
from cleartrace.org.policy_signing import new_policy, sign_policy
from cleartrace.paths import Paths
from cleartrace.upload.uploader import Retry, Uploader
from tests.support.cli import ct
from tests.support.notice import EXAMPLE_NOTICE
from tests.support.orgkit import Org, approve, enrolled, org_audit, record_text

TEXT = "mail jane.doe@example.org or call +49 30 12345678 now"
SESSION = "7" * 32


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> SignedPolicy:
    keys = generate(tmp_path_factory.mktemp("org") / "keys")
    policy = new_policy(
        keys.bundle_public,
        "https://collector.example.com",
        version=3,
        categories=[Category.KEYS, Category.CLICKS, Category.APP_FOCUS],
        hold_days=5,
        keep_uploaded_days=7,
        notice=EXAMPLE_NOTICE,
    )
    return sign_policy(policy, keys.signing_private)


def ledger(policy: dict[str, Any], old: dict[str, Any]) -> list[dict[str, Any]]:
    """A device that consented under an older version, then under `policy`, and withdrew keys."""
    key = Ed25519PrivateKey.generate()
    out: list[dict[str, Any]] = []

    def add(kind: str, minute: int, **fields: Any) -> None:
        prev = record_hash(out[-1]) if out else GENESIS
        when = datetime(2026, 12, 1, 9, minute, tzinfo=UTC)
        unsigned = make_record(seq=len(out) + 1, prev=prev, kind=kind, fields=fields, now=when)
        out.append(sign_record(unsigned, key))

    add("consent.given", 0, categories=["keys"], policy=old)
    add("consent.given", 1, categories=["app_focus", "clicks", "keys"], policy=policy)
    add("session.started", 2, session=SESSION)
    add("session.deleted", 3, session=SESSION)
    add("upload.redacted", 4, session=SESSION, spans={"email": 2})
    add("consent.withdrawn", 5, categories=["keys"], policy=policy)
    return out


def coverage(devices: dict[str, list[dict[str, Any]] | None]) -> dict[str, Any]:
    """What audit.py writes to coverage.json, for these devices' ledgers (None: broken chain)."""
    return {
        "devices": {
            fp: {
                "device": fp,
                "chain": {"status": "intact" if records else "ledger-gap"},
                "facts": None if records is None else ledger_facts(records),
            }
            for fp, records in devices.items()
        }
    }


def test_every_heading_and_fact_comes_from_the_policy(signed: SignedPolicy) -> None:
    policy = signed.policy
    old = {"id": policy.id, "version": 2, "sha256": "ab" * 32}
    devices = {
        "sha256:" + "1" * 64: ledger(policy.reference(), old),
        "sha256:" + "2" * 64: ledger(policy.reference(), old),
        "sha256:" + "3" * 64: None,
    }
    files = evidence_pack(signed, coverage(devices), k=2)
    assert sorted(files) == sorted(EVIDENCE_FILES)
    art30 = files["art30.md"].decode()
    for heading in (
        "# Record of processing activities (GDPR Art. 30)",
        "## Controller",
        "## Data protection officer",
        "## Purposes",
        "## Categories of data subjects",
        "## Categories of personal data",
        "## Recipients",
        "## Transfers and processing location",
        "## Retention",
        "## Security measures as implemented",
    ):
        assert heading in art30, heading
    notice = EXAMPLE_NOTICE
    for fact in (
        notice.controller_name,
        notice.controller_contact,
        str(notice.dpo),
        *notice.purposes,
        *notice.recipients,
        str(notice.processing_location),
        str(notice.retention),
        policy.purpose,
        "https://collector.example.com",
        "mlkem768-x25519",
        "AES-256-GCM",
        "Ed25519",
        "7 days",
        "5 days",
        "e-mail addresses",
        "keepassxc",
    ):
        assert fact in art30, fact
    assert "Mouse movement" not in art30  # not asked for by this policy
    for category in ("Keys you press", "Mouse clicks", "Application in front"):
        assert category in art30
    dpia = files["dpia-inputs.md"].decode()
    for fact in (
        "# DPIA inputs",
        "## Legal basis",
        str(notice.legal_basis),
        "## Safeguards as implemented",
        *notice.recipients,
        str(notice.retention),
    ):
        assert fact in dpia, fact
    annex = files["works-agreement-annex.md"].decode()
    for fact in (
        "# Works-agreement annex",
        "## What is captured",
        "## When",
        "## Who may access it",
        "## Not used to evaluate individual performance",
        "Never while recording is paused",
        str(notice.works_agreement),
        "not used to evaluate individual performance",
        "keepassxc",
    ):
        assert fact in annex, fact
    facts = json.loads(files["evidence.json"])
    assert facts["type"] == "cleartrace-evidence"
    assert facts["policy"]["reference"] == policy.reference()
    assert facts["policy"]["signer"] == signed.fingerprint
    assert facts["notice"] == notice.as_dict()
    assert facts["categories"] == ["keys", "clicks", "app_focus"]
    assert facts["retention"]["hold_days"] == 5
    assert facts["retention"]["keep_uploaded_days"] == 7
    assert facts["security"]["auto_redact"] == [c.value for c in policy.withheld]
    assert facts["security"]["exclusions"] == list(policy.exclusions)
    assert facts["security"]["bundle_suite"] == "mlkem768-x25519"
    fleet = facts["fleet"]
    assert fleet["devices"] == 3
    assert fleet["devices_verified"] == 2
    by_version = {(p["version"], p["sha256"]): p for p in fleet["policies"]}
    assert by_version[(3, policy.sha256)]["devices_given"] == 2
    assert by_version[(3, policy.sha256)]["devices_withdrawn"] == 2
    assert by_version[(3, policy.sha256)]["this_policy"] is True
    assert by_version[(2, old["sha256"])]["devices_given"] == 2
    assert by_version[(2, old["sha256"])]["this_policy"] is False
    assert fleet["consented_now"] == {"app_focus": 2, "clicks": 2}
    assert fleet["withdrawals"] == {"keys": 2}
    assert fleet["deletions"] == 2
    assert fleet["auto_redactions"] == {"email": 4}
    # The audited-fleet figure is said in the record too.
    assert "2 of 3 devices" in art30
    for text in files.values():
        assert SESSION.encode() not in text


def test_fleet_counts_are_shown_only_for_at_least_k_devices(signed: SignedPolicy) -> None:
    policy = signed.policy
    devices = {f"sha256:{i}" + "0" * 63: ledger(policy.reference(), policy.reference())
               for i in range(4)}  # fmt: skip
    hidden = evidence_pack(signed, coverage(devices), k=5)
    fleet = json.loads(hidden["evidence.json"])["fleet"]
    assert (fleet["k"], fleet["shown"]) == (5, False)
    for name in ("devices", "devices_verified", "deletions", "redactions", "paused_now"):
        assert fleet[name] is None, name
    assert fleet["consented_now"] == fleet["withdrawals"] == fleet["auto_redactions"] == {}
    assert fleet["approvals"] == {"person": None, "hold_period": None}
    (entry,) = fleet["policies"]
    assert entry["devices_given"] is None
    assert entry["this_policy"] is True
    for name in ("art30.md", "dpia-inputs.md"):
        text = hidden[name].decode()
        assert "fewer than 5 devices" in text, name
        assert "4 of 4 devices" not in text
        assert "Keys you press: 4" not in text
    assert "Sessions deleted by people: fewer than 5 devices" in hidden["dpia-inputs.md"].decode()
    shown = evidence_pack(signed, coverage(devices), k=4)
    fleet = json.loads(shown["evidence.json"])["fleet"]
    assert (fleet["k"], fleet["shown"], fleet["devices"]) == (4, True, 4)
    assert "4 of 4 devices" in shown["art30.md"].decode()
    assert "fewer than" not in shown["art30.md"].decode()


def test_counts_over_fewer_than_k_verified_ledgers_are_withheld(signed: SignedPolicy) -> None:
    """Five devices in the store, one ledger verified: the sums of sessions approved,
    deleted and redacted are then that one person's, however many devices there are."""
    policy = signed.policy
    devices: dict[str, list[dict[str, Any]] | None] = {
        f"sha256:{i}" + "0" * 63: None for i in range(4)
    }
    devices["sha256:9" + "0" * 63] = ledger(policy.reference(), policy.reference())
    files = evidence_pack(signed, coverage(devices), k=5)
    fleet = json.loads(files["evidence.json"])["fleet"]
    assert fleet["shown"] is False
    assert fleet["deletions"] is None
    assert fleet["auto_redactions"] == {}
    assert "Sessions deleted by people: fewer than 5 devices" in files["dpia-inputs.md"].decode()


def test_a_policy_without_notice_says_what_it_does_not_state(signed: SignedPolicy) -> None:
    keys_policy = signed.policy
    bare = new_policy(
        keys_policy.org_key,  # type: ignore[arg-type]
        "https://collector.example.com",
        categories=[Category.KEYS],
    )
    key = Ed25519PrivateKey.generate()
    files = evidence_pack(sign_policy(bare, key), coverage({}))
    art30 = files["art30.md"].decode()
    assert "not stated in the policy" in art30
    annex = files["works-agreement-annex.md"].decode()
    assert "makes no commitment" in annex
    assert json.loads(files["evidence.json"])["notice"] is None


NO_WAIT = Retry(attempts=2, base=0.01, cap=0.01)


def audit(org: Org, out: Path, *extra: str) -> Any:
    return org_audit(org, out, *extra)


@pytest.fixture
def homes(org: Org, private_home: Paths) -> Any:
    """Two enrolled devices: one typed personal data and uploaded, one withdrew keys."""
    made = []
    for name in ("ann", "bob"):
        paths = Paths(private_home.home.parent / name, private_home.runtime)
        home = enrolled(org, paths)
        give(home.ledger, frozenset(Category), active_policy(paths))
        made.append(home)
    ann, bob = made
    approve(ann, record_text(ann, TEXT))
    Uploader(ann.paths, ann.keys, retry=NO_WAIT).run()
    withdraw(bob.ledger, frozenset({Category.KEYS}), active_policy(bob.paths))
    Uploader(bob.paths, bob.keys, retry=NO_WAIT).run()
    yield made
    for home in made:
        home.close()


def test_org_audit_writes_the_pack_from_the_signed_policy(
    org: Org, homes: list[Home], tmp_path: Path
) -> None:
    out = tmp_path / "report"
    done = audit(org, out, "--policy", str(org.policy))
    assert done.returncode == 0, done.stderr
    evidence = out / "evidence"
    assert sorted(p.name for p in evidence.iterdir()) == sorted(EVIDENCE_FILES)
    facts = json.loads((evidence / "evidence.json").read_text())
    policy = active_policy(homes[0].paths)
    assert facts["policy"]["reference"] == policy.reference()
    # Two devices, fewer than the policy's least group (5 when it sets none): no counts.
    fleet = facts["fleet"]
    assert (fleet["k"], fleet["shown"], fleet["devices"]) == (5, False, None)
    (entry,) = fleet["policies"]
    assert entry["devices_given"] is None
    assert entry["this_policy"] is True
    assert fleet["withdrawals"] == fleet["auto_redactions"] == {}
    assert "fewer than 5 devices" in (evidence / "art30.md").read_text()
    report = json.loads((out / "coverage.json").read_text())
    assert report["evidence"]["written"] is True
    # Nothing captured reaches the pack: not the text, not a title, not an application.
    for path in evidence.iterdir():
        body = path.read_text()
        for content in ("jane.doe", "12345678", "notes", "xterm"):
            assert content not in body, (path.name, content)
    # The pack is covered by the report's signature.
    assert ct("org", "audit", "check", str(out)).returncode == 0
    (evidence / "art30.md").write_text("edited")
    checked = ct("org", "audit", "check", str(out), check=False)
    assert checked.returncode == 1
    assert "evidence/art30.md" in checked.stdout + checked.stderr


def test_without_policy_the_audit_says_the_pack_is_missing(
    org: Org, homes: list[Home], tmp_path: Path
) -> None:
    out = tmp_path / "report"
    done = audit(org, out)
    assert done.returncode == 0, done.stderr
    assert not (out / "evidence").exists()
    assert "no evidence pack: give --policy" in done.stdout
    report = json.loads((out / "coverage.json").read_text())
    assert report["evidence"]["written"] is False


def test_a_policy_that_does_not_verify_is_refused_before_the_audit(
    org: Org, tmp_path: Path
) -> None:
    forged = json.loads(org.policy.read_text())
    forged["policy"]["notice"]["retention"] = "forever"
    bad = tmp_path / "policy.json"
    bad.write_text(json.dumps(forged))
    out = tmp_path / "report"
    done = audit(org, out, "--policy", str(bad))
    assert done.returncode == 2
    assert str(bad) in done.stderr
    assert not (out / "coverage.json").exists()
