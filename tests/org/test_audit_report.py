"""The officer's audit report (index.html, report.pdf), read as people read it: the HTML
in Debian's headless Chromium, the PDF through poppler's pdftotext and pdftoppm."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cleartrace.categories import Category
from cleartrace.consent.signed_policy import active_policy
from cleartrace.consent.state import withdraw
from cleartrace.org.report_html import render_html
from cleartrace.org.report_pdf import render_pdf
from cleartrace.paths import Paths
from tests.org.test_audit import device, run_audit, upload
from tests.support.browser import browser_text, screenshot, visible
from tests.support.cli import ct
from tests.support.dataset_tamper import inject
from tests.support.orgkit import Org, approve, record_session

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>&amp;'
CATS = [c.value for c in Category]

pytestmark = pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("pdftoppm") and shutil.which("pdftotext")),
    reason="needs Debian's chromium and poppler-utils (make sysdeps)",
)


def pdf_text(pdf: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout


def pdf_page_one(pdf: Path, png: Path) -> None:
    stem = png.with_suffix("")
    subprocess.run(
        ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(stem)],
        check=True,
    )
    assert png.read_bytes().startswith(b"\x89PNG")


# A fixed fleet, cheap to build: six devices (one broken), a violation, a hostile policy id.
def _spell(start: str, end: str | None) -> dict[str, Any]:
    return {"start": start, "end": end}


def _facts(i: int) -> dict[str, Any]:
    given = f"2026-11-0{1 + i % 3}T08:00:00.000Z"
    policy = {"id": HOSTILE if i == 0 else "acme-recording", "version": 2, "sha256": "ab" * 32}
    categories = {
        c: {"consented": [_spell(given, None)], "paused": [], "withdrawn": []} for c in CATS
    }
    if i % 2:
        categories["keys"] = {
            "consented": [_spell(given, "2026-11-04T12:00:00.000Z")],
            "paused": [],
            "withdrawn": ["2026-11-04T12:00:00.000Z"],
        }
    for c in CATS:
        if i == 2:
            spells = categories[c]
            spells["consented"] = (
                [
                    _spell(given, "2026-11-03T12:00:00.000Z"),
                    _spell("2026-11-04T09:00:00.000Z", None),
                ]
                if not spells["withdrawn"]
                else spells["consented"]
            )
            spells["paused"] = [_spell("2026-11-03T12:00:00.000Z", "2026-11-04T09:00:00.000Z")]
    consent = [{"seq": 1, "time": given, "kind": "given", "categories": CATS, "policy": policy}]
    if i % 2:
        consent.append(
            {"seq": 9, "time": "2026-11-04T12:00:00.000Z", "kind": "withdrawn",
             "categories": ["keys"], "policy": policy}
        )  # fmt: skip
    return {
        "records": 40, "first": given, "last": "2026-11-06T17:00:00.000Z", "consent": consent,
        "policies": [{**policy, "given": [given], "refused": [], "withdrawn": []}],
        "categories": categories,
        "consented_now": [c for c in CATS if not (i % 2 and c == "keys")],
        "paused_now": False, "apps_excluded": i % 2, "sessions": 7,
        "approvals": {"person": 3 + i, "hold_period": i % 3}, "holds": 1, "deletions": i % 2,
        "redactions": {"count": 1, "events": 12}, "auto_redactions": {"email": 2, "phone": 1},
        "releases": 0, "uploads": 4,
    }  # fmt: skip


def fixed_coverage(n: int = 6) -> dict[str, Any]:
    fps = [f"sha256:{i:x}{'0' * 63}" for i in range(n)]
    devices = {}
    for i, fp in enumerate(fps):
        broken = i == n - 1
        devices[fp] = {
            "device": fp, "subject": f"subj-{i}",
            "chain": {"status": "ledger-rewritten" if broken else "intact",
                      "detail": "", "first_bad_seq": 7 if broken else None,
                      "records": 40, "witnessed_head": {"seq": 40, "hash": "cd" * 32}},
            "bundles": {"in_store": 4, "opened": 4, "sessions": 3},
            "facts": None if broken else _facts(i),
        }  # fmt: skip
    violation = {
        "device": fps[1], "session": "sess-0001", "bundle": "bun" + "1" * 61,
        "file": f"device={fps[1][7:23]}/part-0.parquet", "row": 17,
        "time": "2026-11-05T10:00:00.000Z", "category": "keys",
        "rule": "after-withdrawal", "record": 9,
    }  # fmt: skip
    return {
        "v": 1, "type": "cleartrace-audit-coverage", "created": "2026-12-06T03:00:00.000Z",
        "store": "/srv/collector", "ok": False, "devices": devices,
        "rejected_bundles": [
            {"bundle": "f" * 64, "device": None, "reason": "unreadable", "detail": HOSTILE}
        ],
        "witnessed_heads": {}, "ledgers": {},
        "proof": {
            "devices": {fp: {"rows": 100, "rows_in_consent": 100 - (fp == fps[1]),
                             "violations": int(fp == fps[1])} for fp in fps[:-1]},
            "totals": {"devices": n - 1, "files": 5, "unreadable_files": 0, "rows": 500,
                       "rows_in_consent": 499, "violations": 1, "violations_listed": 1},
            "violations": [violation],
        },
    }  # fmt: skip


SUBJECT = "5e" * 16


def org_acts(n: int, start: int = 1) -> list[dict[str, Any]]:
    """`n` officer-side acts as coverage.json lists them, one a minute from 2026-11-01."""
    kinds = [
        {"kind": "ingest.run", "bundles": 4, "rows": 120, "digest": "aa" * 32},
        {"kind": "subject.exported", "subject": SUBJECT, "bundles": 2, "rows": 40,
         "digest": "bb" * 32},
        {"kind": "subject.erased", "subject": SUBJECT, "bundles": 2, "rows": 40,
         "digest": "cc" * 32},
        {"kind": "audit.run", "devices": 6, "digest": "dd" * 32},
    ]  # fmt: skip
    return [
        {"seq": seq, "time": f"2026-11-{1 + seq // 1440:02d}T{seq // 60 % 24:02d}:"
         f"{seq % 60:02d}:00.000Z", **kinds[seq % len(kinds)]}
        for seq in range(start, start + n)
    ]  # fmt: skip


def with_org_ledgers(coverage: dict[str, Any], officer_acts: int = 4) -> dict[str, Any]:
    """The fixed coverage with a collector chain intact and an officer chain broken at 3."""
    admitted = "sha256:" + "ab12" * 16
    collector = {
        "file": "org-ledger/collector.jsonl", "sha256": "ee" * 32, "signer": "sha256:" + "c" * 64,
        "status": "intact", "records": 2, "detail": "intact: 2 records",
        "acts": [
            {"seq": 1, "time": "2026-10-30T09:00:00.000Z", "kind": "tokens.issued",
             "tokens": 3},
            {"seq": 2, "time": "2026-10-30T09:05:00.000Z", "kind": "device.admitted",
             "device": admitted, "subject": SUBJECT},
        ],
    }  # fmt: skip
    officer = {
        "file": "org-ledger/officer.jsonl", "sha256": "ff" * 32, "signer": "sha256:" + "d" * 64,
        "status": "broken", "reason": "ledger-bad-signature", "first_bad_seq": officer_acts + 1,
        "detail": f"record {officer_acts + 1}: the signature does not verify",
        "acts": org_acts(officer_acts),
    }  # fmt: skip
    coverage["org_ledger"] = {
        "status": "broken",
        "chains": {"collector": collector, "officer": officer},
        "erasures": [{"subject": SUBJECT, "status": "recorded", "digest": "cc" * 32}],
    }
    return coverage


def test_who_accessed_what_when_is_in_the_page_and_the_pdf(tmp_path: Path) -> None:
    coverage = with_org_ledgers(fixed_coverage())
    html, pdf = tmp_path / "index.html", tmp_path / "report.pdf"
    html.write_text(render_html(coverage))
    pdf.write_bytes(render_pdf(coverage))
    shown = visible(browser_text(html))
    printed = re.sub(r"\s+", " ", pdf_text(pdf))
    for text in (shown, printed):
        assert "Who accessed what, when" in text
        assert "3 enrolment tokens were issued" in text
        assert "device sha256:ab12ab12ab12… was admitted (subject " + SUBJECT + ")" in text
        assert "ingest ran (its bundle and row counts are in coverage.json only)" in text
        assert "120 rows" not in text  # possibly one person's volume: never
        assert f"the data held about subject {SUBJECT} was exported" in text
        assert f"subject {SUBJECT} was erased: their bundles and dataset rows were removed" in text
        assert "40 rows" not in text  # one person's volume: never
        assert "an audit ran over 6 devices" in text
        # The broken chain is named, with its first bad record and why.
        assert "officer broken" in text
        assert "first bad record 5: ledger-bad-signature" in text
        assert "collector intact" in text
    screenshot(html, tmp_path / "org-ledger.png")
    # Ingest's and the audit's counts are fleet figures: not for fewer than k devices.
    hidden = visible(render_html(coverage, k=7))
    assert "an audit ran (its counts are not shown: fewer than 7 devices)" in hidden
    assert "120 rows" not in hidden


def test_an_ingest_run_never_shows_one_persons_activity_volume() -> None:
    """An ingest run reads the bundles uploaded since the one before: in a fleet of
    many devices, a run after one person's upload reads that person's bundle only,
    and its row count is their activity in that session (the report leaves
    dataset rows per device out for that reason). Its counts stay in coverage.json."""
    coverage = with_org_ledgers(fixed_coverage())
    officer = coverage["org_ledger"]["chains"]["officer"]
    officer["acts"][0] = {"seq": 1, "time": "2026-11-01T00:01:00.000Z", "kind": "ingest.run",
                          "bundles": 1, "rows": 4321, "digest": "aa" * 32}  # fmt: skip
    assert len(coverage["devices"]) >= 5
    shown = visible(render_html(coverage, k=5))
    assert "ingest ran" in shown
    assert "4321" not in shown
    assert "1 bundle read" not in shown


def test_a_long_org_ledger_shows_its_last_200_acts_and_says_how_many_are_left_out() -> None:
    coverage = with_org_ledgers(fixed_coverage(), officer_acts=250)
    shown = visible(render_html(coverage))
    assert "the last 200 of 250 acts; 50 earlier ones are left out here" in shown
    assert "coverage.json and org-ledger/officer.jsonl hold them all" in shown
    assert "2026-11-01T00:51:00.000Z" in shown  # act 51, the first shown
    assert "2026-11-01T00:50:00.000Z" not in shown  # act 50, left out


def test_without_org_ledgers_the_report_says_none_was_given() -> None:
    shown = visible(render_html(fixed_coverage()))
    assert "no org ledger was given" in shown


def test_hostile_strings_are_shown_as_text_never_markup(tmp_path: Path) -> None:
    html = render_html(fixed_coverage())
    assert "<script" not in html
    assert "<img" not in html
    assert "onerror=alert(1)&gt;" in html
    assert "&amp;amp;" in html
    # In the PDF it is text too (reportlab's paragraph markup is escaped).
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(render_pdf(fixed_coverage()))
    assert '<script>alert("x")</script>' in pdf_text(pdf).replace("\n", "")


def test_fleet_figures_only_for_at_least_k_devices() -> None:
    coverage = fixed_coverage(6)
    shown = visible(render_html(coverage, k=5))
    assert "devices audited 6" in shown
    assert "fewer than" not in shown
    hidden = visible(render_html(coverage, k=7))
    assert "devices audited fewer than 7 devices" in hidden
    assert "ledgers broken or unproven fewer than 7 devices" in hidden
    assert "Consent across the fleet over time: not shown, fewer than 7 devices" in hidden
    # No activity volume: the fixed facts' record, session and row counts are not in it.
    for figure in ("records", "sessions", "rows_in_consent", " 40 ", " 500 "):
        assert figure not in hidden


def test_the_fixed_report_in_the_browser_and_its_screenshot(tmp_path: Path) -> None:
    """A fixed report, hostile strings included, as Chromium and poppler show it
    (the docs' screenshots are of a real fleet's: tests/e2e/test_audit_e2e.py)."""
    coverage = fixed_coverage()
    html, pdf = tmp_path / "index.html", tmp_path / "report.pdf"
    html.write_text(render_html(coverage))
    pdf.write_bytes(render_pdf(coverage))
    assert render_html(coverage) == html.read_text()  # deterministic
    assert render_pdf(coverage) == pdf.read_bytes()
    text = visible(browser_text(html))
    for fp in coverage["devices"]:
        assert fp in text
    assert HOSTILE in text
    assert "sess-0001" in text
    assert "after-withdrawal" in text
    screenshot(html, tmp_path / "audit-report.png")
    pdf_page_one(pdf, tmp_path / "page-1.png")


def test_the_audit_writes_the_report_a_browser_and_a_pdf_reader_show(
    org: Org, private_home: Paths, tmp_path: Path
) -> None:
    ann, bob = device(org, private_home, "ann"), device(org, private_home, "bob")
    try:
        approve(ann, record_session(ann, 20))
        ann.ledger.append("recording.paused", until=None)
        ann.ledger.append("recording.resumed", reason="person")
        withdraw(ann.ledger, frozenset({Category.KEYS}), active_policy(ann.paths))
        upload(ann)
        approve(bob, record_session(bob, 20))
        upload(bob)
        fps = [ann.ledger.device, bob.ledger.device]
    finally:
        ann.close()
        bob.close()
    data, dataset = org.collector.data, tmp_path / "dataset"
    ct(
        "org", "ingest", "--from", str(data), "--keys", str(org.keys_dir),
        "--out", str(dataset), "--witness-key", str(data / "witness.pub"), "--quiet",
    )  # fmt: skip
    events = sorted((dataset / "events").rglob("part-*.parquet"))
    part = next(p for p in events if fps[1][7:23] in str(p))
    row = inject(part, time=datetime(2020, 1, 1, tzinfo=UTC))
    out = tmp_path / "report"
    done = run_audit(org, out, "--dataset", str(dataset))
    assert done.returncode == 1, done.stderr
    (violation,) = json.loads((out / "coverage.json").read_text())["proof"]["violations"]
    assert violation["row"] == row
    html = (out / "index.html").read_text()
    assert not re.search(r"https?://", html)  # nothing to fetch: it is all in the file
    text = visible(browser_text(out / "index.html"))
    for fp in fps:
        assert fp in text
    for key in ("session", "bundle", "file", "row", "rule"):
        assert str(violation[key]) in text
    assert violation["record"] is None  # a row from before any consent
    assert "none: consent never given" in text
    # Who accessed what, when: the collector's admissions, the officer's ingest and audit.
    for fp in fps:
        assert f"device {fp[:19]}… was admitted" in text
    assert "enrolment token was issued" in text
    assert "ingest ran (its bundle and row counts are in coverage.json only)" in text
    assert "an audit ran (its counts are not shown: fewer than 5 devices)" in text
    assert "collector intact" in text
    assert "officer intact" in text
    assert "devices audited fewer than 5 devices" in text
    screenshot(out / "index.html", tmp_path / "shot.png")
    in_pdf = pdf_text(out / "report.pdf").replace("\n", "")
    for fp in fps:
        assert fp.removeprefix("sha256:")[:40] in in_pdf
    pdf_page_one(out / "report.pdf", tmp_path / "page1.png")
    # Both are covered by the signature.
    manifest = (out / "MANIFEST").read_text()
    assert "index.html" in manifest
    assert "report.pdf" in manifest
    assert ct("org", "audit", "check", str(out)).stdout.startswith("ok: ")
    shown = run_audit(org, tmp_path / "k2", "--dataset", str(dataset), "--k", "2")
    assert "devices audited 2" in visible((tmp_path / "k2" / "index.html").read_text()), shown
    # An org ledger edited after the fact: the report names the chain and its first bad record.
    ledger = dataset.with_name(dataset.name + ".org-ledger.jsonl")
    lines = ledger.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"rows":', b'"rows":1', 1)  # the ingest record
    ledger.write_bytes(b"\n".join(lines))
    assert run_audit(org, tmp_path / "edited", "--dataset", str(dataset)).returncode == 1
    edited = visible(browser_text(tmp_path / "edited" / "index.html"))
    assert "officer broken" in edited
    assert "first bad record 1: " in edited
    printed = re.sub(r"\s+", " ", pdf_text(tmp_path / "edited" / "report.pdf"))
    assert "officer broken" in printed


def test_without_the_officer_libraries_the_audit_says_what_to_install(
    org: Org, tmp_path: Path
) -> None:
    hide = (
        "import sys; sys.modules['matplotlib'] = None; "
        "from cleartrace.launch import main; sys.exit(main())"
    )
    data = org.collector.data
    done = subprocess.run(
        [sys.executable, "-c", hide, "org", "audit", "--from", str(data), "--keys",
         str(org.keys_dir), "--witness-key", str(data / "witness.pub"), "--out",
         str(tmp_path / "r")],
        capture_output=True, text=True, env=os.environ.copy(), timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "pip install 'cleartrace[officer]'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
