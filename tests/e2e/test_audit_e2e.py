"""The officer's audit of a real fleet: three devices, each its own home and Xvfb,
typed on through xdotool, enrolled with one collector on 127.0.0.1, their people
giving, pausing and withdrawing consent, deleting and redacting sessions through
the CLI; then `org ingest` and `org audit`, every figure of coverage.json held
against what the people did."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.json as pa_json
import pyarrow.parquet as pq
import pytest

from cleartrace.categories import USUAL, Category
from tests.support import REPO
from tests.support.audit_fleet import ACTS, Fleet, fleet_of_three
from tests.support.browser import browser_text, screenshot, visible
from tests.support.cli import ct
from tests.support.dataset_tamper import inject
from tests.support.orgkit import org_audit

pytestmark = pytest.mark.xserver


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """One fleet for the module's tests: building it is most of their time."""
    with fleet_of_three(tmp_path_factory.mktemp("fleet")) as made:
        yield made


def audit(fleet: Fleet, out: Path, dataset: Path | None = None) -> Any:
    return org_audit(
        fleet.org, out, "--dataset", str(dataset or fleet.dataset),
        "--policy", str(fleet.org.policy), "--heads-from", str(fleet.org.collector.data),
    )  # fmt: skip


def coverage(out: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((out / "coverage.json").read_text())
    return found


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def file_rows(path: Path) -> list[dict[str, Any]]:
    """A dataset file's rows, read by pyarrow as a reader of the dataset would."""
    if path.suffix == ".parquet":
        rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    else:
        rows = pa_json.read_json(path).to_pylist()
    return rows


def data_files(dataset: Path, fp: str = "", table: str = "*") -> list[Path]:
    """The dataset's .parquet and .jsonl files, of both tables unless `table` names
    one (of one device when `fp` is given)."""
    folder = f"device={fp.removeprefix('sha256:')[:16]}" if fp else "device=*"
    return sorted(p for p in dataset.glob(f"{table}/day=*/{folder}/part-*") if p.suffix != ".tmp")


@pytest.fixture(scope="module")
def honest(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first audit of the fleet and its dataset, as it came from ingest."""
    out = tmp_path_factory.mktemp("honest") / "report"
    done = audit(fleet, out)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "devices: 3, 3 intact" in done.stdout
    return out


#: What `consent give --all` gives: every category but typing_rhythm, never asked here.
ALL = sorted(c.value for c in USUAL)


def test_every_figure_of_the_fleet_is_what_its_people_did(
    fleet: Fleet, honest: Path, tmp_path: Path
) -> None:
    report = coverage(honest)
    fps = {name: fleet.fp(name) for name in fleet.devices}
    # Every top-level figure, each checked below.
    assert set(report) == {
        "v", "type", "created", "store", "ok", "devices", "rejected_bundles",
        "witnessed_heads", "ledgers", "proof", "dataset_files", "evidence", "org_ledger",
        "k", "heads_from",
    }  # fmt: skip
    assert (report["v"], report["type"]) == (1, "cleartrace-audit-coverage")
    assert report["k"] == {"value": 5, "source": "policy"}  # the policy's default least group
    assert report["heads_from"] == "registry"
    last_act = max(r["time"] for dev in fleet.devices.values() for r in dev.ledger())
    assert report["created"] > last_act
    assert report["ok"] is True
    assert report["rejected_bundles"] == []
    assert sorted(report["devices"]) == sorted(fps.values())
    assert report["store"] == str(fleet.org.collector.data)
    consented_to = []
    enrolled_as = {
        d["device"]: d
        for d in json.loads(
            ct("org", "devices", "--data", str(fleet.org.collector.data), "--json").stdout
        )
    }
    for name, dev in fleet.devices.items():
        fp, entry = fps[name], report["devices"][fps[name]]
        export = tmp_path / f"{name}.jsonl"
        dev.ct("ledger", "export", "--out", str(export))
        lines = export.read_text().splitlines()
        records = [json.loads(line) for line in lines[1:]]
        # The device's ledger is what its person did, plus one acknowledgement per
        # bundle the collector took; the last of those comes after the head it witnessed.
        assert [r["kind"] for r in records if r["kind"] != "bundle.uploaded"] == ACTS[name]
        acks = [r for r in records if r["kind"] == "bundle.uploaded"]
        consented_to += [r["policy"] for r in records if r["kind"] == "consent.given"]
        assert records[-1] == acks[-1]
        head = acks[-1]["witnessed"]
        assert head["seq"] == len(records) - 1
        assert set(entry) == {"device", "subject", "chain", "bundles", "facts", "ledger_file"}
        assert entry["device"] == fp
        assert entry["subject"] == enrolled_as[fp]["subject"]
        assert entry["chain"] == {
            "status": "intact",
            "detail": f"intact up to witnessed head {head['seq']}",
            "first_bad_seq": None,
            "records": head["seq"],
            "witnessed_head": head,
        }
        assert report["witnessed_heads"][fp] == head
        sessions_sent = {"a": 1, "b": 2, "c": 1}[name]
        assert entry["bundles"] == {
            "in_store": len(acks), "opened": len(acks), "sessions": sessions_sent,
        }  # fmt: skip
        # The exported ledger is the device's own, byte for byte, up to the head.
        path = honest / entry["ledger_file"]["path"]
        assert path.read_text().splitlines() == lines[: head["seq"] + 1]
        assert entry["ledger_file"]["sha256"] == sha256(path)
        assert report["ledgers"][entry["ledger_file"]["path"]] == sha256(path)
        verified = ct(
            "audit", "verify", str(path), "--expect-device", fp,
            "--head", f"{head['seq']}:{head['hash']}",
        )  # fmt: skip
        assert verified.stdout.startswith("ok: ")
        check_facts(name, entry["facts"], records[: head["seq"]])
    assert sorted(report["ledgers"]) == sorted(
        f"ledgers/{p.name}" for p in (honest / "ledgers").glob("*.jsonl")
    )
    check_proof(fleet, report, fps)
    assert report["evidence"]["written"] is True
    # The policy every device consented under (the reference in its ledger).
    assert {json.dumps(p) for p in consented_to} == {json.dumps(report["evidence"]["policy"])}
    # The organisation's own ledgers: three tokens issued and three devices admitted;
    # one ingest and this audit on the officer's side.
    chains = report["org_ledger"]["chains"]
    assert report["org_ledger"]["status"] == "intact"
    assert (chains["collector"]["status"], chains["collector"]["records"]) == ("intact", 6)
    assert (chains["officer"]["status"], chains["officer"]["records"]) == ("intact", 2)
    for chain in chains.values():
        assert sha256(honest / chain["file"]) == chain["sha256"]
    checked = ct("org", "audit", "check", str(honest), "--officer-key", str(fleet.org.keys_dir))
    assert checked.stdout.startswith("ok: ")


def spell(start: str, end: str | None) -> dict[str, str | None]:
    return {"start": start, "end": end}


def check_facts(name: str, facts: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """`facts` against the device's own records up to the witnessed head."""

    def times(kind: str) -> list[str]:
        return [str(r["time"]) for r in records if r["kind"] == kind]

    given, withdrawn = times("consent.given"), times("consent.withdrawn")
    policy = next(r["policy"] for r in records if r["kind"] == "consent.given")
    assert facts["records"] == len(records)
    assert (facts["first"], facts["last"]) == (records[0]["time"], records[-1]["time"])
    assert facts["policies"] == [{**policy, "given": given, "refused": [], "withdrawn": withdrawn}]
    consent = [(c["kind"], c["time"], c["seq"], sorted(c["categories"])) for c in facts["consent"]]
    acts = [r for r in records if r["kind"].startswith("consent.")]
    assert consent == [
        (r["kind"].removeprefix("consent."), r["time"], r["seq"], sorted(r["categories"]))
        for r in acts
    ]
    assert all(c["policy"] == policy for c in facts["consent"])
    uploads = sum(1 for r in records if r["kind"] == "bundle.uploaded")
    expected: dict[str, Any] = {
        "apps_excluded": 0, "auto_redactions": {}, "holds": 0, "releases": 0,
        "paused_now": False, "uploads": uploads,
    }  # fmt: skip
    if name == "a":
        cats = {c: {"consented": [spell(given[0], None)], "paused": [], "withdrawn": []}
                for c in ALL}  # fmt: skip
        expected |= {
            "sessions": 2, "deletions": 1, "redactions": {"count": 1, "events": 12},
            "approvals": {"person": 1, "hold_period": 0}, "consented_now": ALL,
        }  # fmt: skip
    elif name == "b":
        (paused,), (resumed,) = times("recording.paused"), times("recording.resumed")
        cats = {
            c: {
                "consented": [spell(given[0], paused),
                              spell(resumed, withdrawn[0] if c == "keys" else None)],
                "paused": [spell(paused, resumed)],
                "withdrawn": withdrawn if c == "keys" else [],
            }
            for c in ALL
        }  # fmt: skip
        expected |= {
            "sessions": 2, "deletions": 0, "redactions": {"count": 0, "events": 0},
            "approvals": {"person": 2, "hold_period": 0},
            "consented_now": [c for c in ALL if c != "keys"],
        }  # fmt: skip
    else:
        cats = {c: {"consented": [spell(given[0], withdrawn[0])], "paused": [],
                    "withdrawn": withdrawn} for c in ALL}  # fmt: skip
        expected |= {
            "sessions": 1, "deletions": 0, "redactions": {"count": 0, "events": 0},
            "approvals": {"person": 1, "hold_period": 0}, "consented_now": [],
        }  # fmt: skip
    cats[Category.TYPING_RHYTHM.value] = {"consented": [], "paused": [], "withdrawn": []}
    assert facts["categories"] == cats
    assert {k: facts[k] for k in expected} == expected
    assert set(facts) == {*expected, "categories", "consent", "policies", "records", "first",
                          "last"}  # fmt: skip


def check_proof(fleet: Fleet, report: dict[str, Any], fps: dict[str, str]) -> None:
    """The proof's figures against the dataset's files as pyarrow reads them."""
    proof = report["proof"]
    files = data_files(fleet.dataset)
    per_device = {
        fp: sum(len(file_rows(p)) for p in data_files(fleet.dataset, fp)) for fp in fps.values()
    }
    assert per_device[fps["c"]] == 0  # all withdrawn: nothing of C's is left
    assert all(per_device[fps[n]] > 0 for n in ("a", "b"))
    assert proof["devices"] == {
        fp: {"rows": n, "rows_in_consent": n, "violations": 0} for fp, n in per_device.items()
    }
    total = sum(per_device.values())
    assert proof["totals"] == {
        "devices": 3, "files": len(files), "unreadable_files": 0, "rows": total,
        "rows_in_consent": total, "violations": 0, "violations_listed": 0,
    }  # fmt: skip
    assert proof["violations"] == []
    on_disk = {
        p.relative_to(fleet.dataset).as_posix(): sha256(p)
        for p in fleet.dataset.rglob("*")
        if p.is_file()
    }
    assert report["dataset_files"] == on_disk
    # What reached the dataset: A's kept session without "secret"; none of B's keys.
    events = data_files(fleet.dataset, table="events")
    rows = [r for p in events if p.suffix == ".parquet" for r in file_rows(p)]
    typed = "".join(
        r["char"] or "" for r in rows if r["session"] == fleet.did["a"]["kept"]
        and r["kind"] == "key_down"
    )  # fmt: skip
    assert typed == "hello  world"
    assert {r["session"] for r in rows} == {
        fleet.did["a"]["kept"],
        fleet.did["b"]["first"],
        fleet.did["b"]["second"],
    }
    b_rows = [r for r in rows if r["device"] == fps["b"][7:23]]
    assert b_rows
    assert not [r for r in b_rows if r["category"] == "keys"]


@dataclass
class Violated:
    """The fleet's dataset copied, one row outside consent added, and its audit."""

    dataset: Path
    file: Path
    row: int
    report: Path
    done: Any


@pytest.fixture(scope="module")
def violated(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Violated:
    root = tmp_path_factory.mktemp("violated")
    dataset = root / "dataset"
    shutil.copytree(fleet.dataset, dataset)
    second = fleet.did["b"]["second"]  # recorded after B withdrew keys
    target = next(
        p
        for p in data_files(dataset, fleet.fp("b"), table="events")
        if p.suffix == ".parquet" and second in {r["session"] for r in file_rows(p)}
    )
    # Someone with write access to the dataset adds a key press to that session,
    # at the time of one of its clicks: inside B's withdrawal of keys.
    row = inject(
        target, like="button_down", kind="key_down", category="keys", keysym=0x61, char="a",
        key="a", x=None, y=None, button=None,
    )  # fmt: skip
    out = root / "report"
    return Violated(dataset, target, row, out, audit(fleet, out, dataset))


def test_a_row_outside_consent_is_named_and_the_report_still_checks(
    fleet: Fleet, violated: Violated, tmp_path: Path
) -> None:
    done = violated.done
    assert done.returncode == 1, done.stderr
    report = coverage(violated.report)
    assert report["ok"] is False
    fp_b = fleet.fp("b")
    withdrawal = next(r for r in fleet.devices["b"].ledger() if r["kind"] == "consent.withdrawn")
    (violation,) = report["proof"]["violations"]
    added = file_rows(violated.file)[violated.row]
    # The added row's own time (the column is UTC).
    at = added["time"].replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    assert violation["time"] == at
    assert violation == {
        "device": fp_b,
        "session": fleet.did["b"]["second"],
        "bundle": added["bundle"],
        "file": violated.file.relative_to(violated.dataset).as_posix(),
        "row": violated.row,
        "time": violation["time"],
        "category": "keys",
        "rule": "outside-consent",
        "record": withdrawal["seq"],
    }
    assert violation["time"] > withdrawal["time"]
    assert report["proof"]["totals"]["violations"] == 1
    figures = report["proof"]["devices"][fp_b]
    assert figures["violations"] == 1
    assert figures["rows_in_consent"] == figures["rows"] - 1
    for fp, device_figures in report["proof"]["devices"].items():
        if fp != fp_b:
            assert device_figures["violations"] == 0
    line = f"violation: device {fp_b} session {fleet.did['b']['second']} bundle"
    assert line in done.stdout
    assert f"row {violated.row}" in done.stdout
    assert {d["chain"]["status"] for d in report["devices"].values()} == {"intact"}
    assert report["dataset_files"][violation["file"]] == sha256(violated.file)

    # The report is genuine though what it found is not; one byte changed and it is not.
    assert ct("org", "audit", "check", str(violated.report)).returncode == 0
    copy = tmp_path / "report"
    shutil.copytree(violated.report, copy)
    raw = bytearray((copy / "coverage.json").read_bytes())
    raw[raw.index(b'"ok":false') + 5] = ord("F")
    (copy / "coverage.json").write_bytes(bytes(raw))
    changed = ct("org", "audit", "check", str(copy), check=False)
    assert changed.returncode == 1
    assert "coverage.json" in changed.stderr


SHOT = REPO / "docs" / "screenshots" / "audit-report.png"


@pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian's chromium (make sysdeps)")
def test_the_report_in_a_browser_shows_every_device_and_the_violation(
    fleet: Fleet, violated: Violated
) -> None:
    """docs/screenshots/audit-report.png comes from here: this real fleet's report."""
    html = violated.report / "index.html"
    text = visible(browser_text(html))
    for name in fleet.devices:
        assert fleet.fp(name) in text
    assert "groups of at least 5 devices (k set by the signed policy)" in text
    (violation,) = coverage(violated.report)["proof"]["violations"]
    # The violation's own table row, cell by cell (a row or record number alone is a
    # digit or two, found anywhere on the page).
    cells = ("device", "session", "bundle", "file", "row", "time", "category", "rule", "record")
    assert " ".join(str(violation[key]) for key in cells) in text
    screenshot(html, SHOT, height=2450)


PDF_SHOT = REPO / "docs" / "screenshots" / "audit-report-pdf.png"


def _pdf(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(
    not (shutil.which("pdftoppm") and shutil.which("pdftotext")),
    reason="needs poppler-utils (make sysdeps)",
)
def test_the_pdf_for_filing_holds_every_device_and_the_violation(
    fleet: Fleet, violated: Violated, tmp_path: Path
) -> None:
    """docs/screenshots/audit-report-pdf.png comes from here: the page of this real
    fleet's report.pdf with its consent timelines, as poppler draws it."""
    pdf = violated.report / "report.pdf"
    found = re.search(r"Pages:\s+(\d+)", _pdf("pdfinfo", str(pdf)))
    assert found is not None
    pages = int(found[1])
    text = " ".join(_pdf("pdftotext", "-layout", str(pdf), "-").split())
    for name in fleet.devices:
        assert fleet.fp(name)[:23] in text
    (violation,) = coverage(violated.report)["proof"]["violations"]
    assert "outside-consent" in text
    assert str(violation["session"])[:12] in text
    timeline = next(
        n
        for n in range(1, pages + 1)
        if "Consent timeline" in _pdf("pdftotext", "-f", str(n), "-l", str(n), str(pdf), "-")
    )
    stem = tmp_path / "page"
    subprocess.run(
        ["pdftoppm", "-png", "-r", "70", "-f", str(timeline), "-l", str(timeline),
         "-singlefile", str(pdf), str(stem)],
        check=True,
    )  # fmt: skip
    shot = stem.with_suffix(".png").read_bytes()
    assert shot.startswith(b"\x89PNG")
    PDF_SHOT.write_bytes(shot)
