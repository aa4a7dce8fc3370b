"""`cleartrace org audit` against a real collector on 127.0.0.1 and devices that uploaded to it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from cleartrace.categories import Category
from cleartrace.consent.removal import remove_session
from cleartrace.consent.signed_policy import active_policy
from cleartrace.consent.state import give, withdraw
from cleartrace.home import Home
from cleartrace.org.blobstore import S3Store
from cleartrace.org.keys import generate
from cleartrace.paths import Paths
from cleartrace.review import approval, redaction
from cleartrace.upload.uploader import Retry, Uploader
from tests.support.cli import ct
from tests.support.dataset_tamper import inject
from tests.support.ledger_rewrite import rewrite_the_withdrawal
from tests.support.orgkit import (
    Org,
    approve,
    enrolled,
    org_audit,
    record_session,
    record_text,
)

NO_WAIT = Retry(attempts=2, base=0.01, cap=0.01)
TEXT = "mail jane.doe@example.org or call +49 30 12345678 now"


def upload(home: Home) -> list[str]:
    return Uploader(home.paths, home.keys, retry=NO_WAIT).run().uploaded


def device(org: Org, private_home: Paths, name: str) -> Home:
    paths = Paths(private_home.home.parent / name, private_home.runtime)
    home = enrolled(org, paths)
    give(home.ledger, frozenset(Category), active_policy(paths))
    return home


def run_audit(org: Org, out: Path, *extra: str, keys: Path | None = None) -> Any:
    return org_audit(org, out, *extra, keys=keys)


def coverage(out: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((out / "coverage.json").read_text())
    return found


@dataclass
class Fleet:
    org: Org
    homes: dict[str, Home]

    def fp(self, name: str) -> str:
        return self.homes[name].ledger.device

    def times(self, name: str, kind: str) -> list[str]:
        return [str(r["time"]) for r in self.homes[name].ledger.records() if r["kind"] == kind]


@pytest.fixture
def fleet(org: Org, private_home: Paths) -> Any:
    """Two devices' consent histories, uploaded: see each test for what they did."""
    homes = {"ann": device(org, private_home, "ann"), "bob": device(org, private_home, "bob")}
    ann, bob = homes["ann"], homes["bob"]
    approve(ann, record_session(ann, 20))  # by the person
    record_session(ann, 20)
    assert len(approval.settle(ann.store, ann.ledger, 0)) == 1  # by the hold period
    upload(ann)
    ann.ledger.append("recording.paused", until=None)
    ann.ledger.append("recording.resumed", reason="person")
    redacted = record_session(ann, 20)
    events = ann.store.read_events(redacted)
    redaction.apply(ann.store, ann.ledger, redaction.by_match(redacted, events, "bc"))
    approve(ann, redacted)
    upload(ann)
    withdraw(ann.ledger, frozenset({Category.KEYS}), active_policy(ann.paths))
    upload(ann)  # the withdrawal travels in a ledger-only bundle
    approve(bob, record_text(bob, TEXT))  # an email and a phone number left out of it
    upload(bob)
    remove_session(bob.store, bob.ledger, record_session(bob, 20))
    upload(bob)
    yield Fleet(org, homes)
    for home in homes.values():
        home.close()


def test_every_figure_of_an_honest_fleet(fleet: Fleet, tmp_path: Path) -> None:
    out = tmp_path / "report"
    done = run_audit(fleet.org, out)
    assert done.returncode == 0, done.stderr
    assert "devices: 2, 2 intact" in done.stdout
    report = coverage(out)
    assert report["ok"] is True
    assert report["rejected_bundles"] == []
    assert sorted(report["devices"]) == sorted([fleet.fp("ann"), fleet.fp("bob")])
    stored = json.loads(
        ct("org", "devices", "--data", str(fleet.org.collector.data), "--json").stdout
    )
    enrolled_as = {d["device"]: d for d in stored}
    for name, home in fleet.homes.items():
        fp = fleet.fp(name)
        entry = report["devices"][fp]
        records = home.ledger.records()
        witnessed = [r["witnessed"] for r in records if r["kind"] == "bundle.uploaded"][-1]
        assert entry["subject"] == enrolled_as[fp]["subject"]
        assert enrolled_as[fp]["head"] == witnessed
        assert entry["chain"] == {
            "status": "intact",
            "detail": f"intact up to witnessed head {witnessed['seq']}",
            "first_bad_seq": None,
            "records": witnessed["seq"],
            "witnessed_head": witnessed,
        }
        assert report["witnessed_heads"][fp] == witnessed
        # The export is byte for byte what the device itself exports, up to the head.
        path = out / "ledgers" / f"{fp.removeprefix('sha256:')}.jsonl"
        mine = home.ledger.export_lines()[: witnessed["seq"] + 1]
        assert path.read_text().splitlines() == mine
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert entry["ledger_file"] == {"path": f"ledgers/{path.name}", "sha256": digest}
        assert report["ledgers"][f"ledgers/{path.name}"] == digest
        verified = ct(
            "audit",
            "verify",
            str(path),
            "--expect-device",
            fp,
            "--head",
            f"{witnessed['seq']}:{witnessed['hash']}",
        )
        assert verified.stdout.startswith("ok: ")
    ann = report["devices"][fleet.fp("ann")]["facts"]
    given, paused = fleet.times("ann", "consent.given"), fleet.times("ann", "recording.paused")
    resumed, withdrawn = (
        fleet.times("ann", "recording.resumed"),
        fleet.times("ann", "consent.withdrawn"),
    )
    assert ann["categories"]["keys"] == {
        "consented": [
            {"start": given[0], "end": paused[0]},
            {"start": resumed[0], "end": withdrawn[0]},
        ],
        "paused": [{"start": paused[0], "end": resumed[0]}],
        "withdrawn": withdrawn,
    }
    assert ann["categories"]["clicks"] == {
        "consented": [{"start": given[0], "end": paused[0]}, {"start": resumed[0], "end": None}],
        "paused": [{"start": paused[0], "end": resumed[0]}],
        "withdrawn": [],
    }
    policy = active_policy(fleet.homes["ann"].paths)
    assert ann["policies"] == [
        {**policy.reference(), "given": given, "refused": [], "withdrawn": withdrawn}
    ]
    assert [(c["kind"], c["time"]) for c in ann["consent"]] == [
        ("given", given[0]),
        ("withdrawn", withdrawn[0]),
    ]
    # Withdrawing the keys withdrew typing rhythm with them.
    gone = (Category.KEYS, Category.TYPING_RHYTHM)
    assert ann["consented_now"] == sorted(c.value for c in Category if c not in gone)
    assert ann["paused_now"] is False
    assert ann["sessions"] == 3
    assert ann["approvals"] == {"person": 2, "hold_period": 1}
    assert ann["deletions"] == 0
    assert ann["redactions"] == {"count": 1, "events": 4}  # "bc" in a..t: 2 presses, 2 releases
    assert ann["auto_redactions"] == {}
    # Four bundles acknowledged; the last acknowledgement is recorded after the head
    # the collector witnessed, so the store's ledger holds three of them.
    assert ann["uploads"] == 3
    assert ann["releases"] == 0
    assert ann["apps_excluded"] == 0
    bob = report["devices"][fleet.fp("bob")]["facts"]
    assert bob["approvals"] == {"person": 1, "hold_period": 0}
    assert bob["deletions"] == 1
    assert bob["redactions"] == {"count": 0, "events": 0}
    assert bob["auto_redactions"] == {"email": 1, "phone": 1}
    assert bob["uploads"] == 1
    assert bob["sessions"] == 2
    assert bob["categories"]["keys"]["withdrawn"] == []
    assert report["devices"][fleet.fp("ann")]["bundles"]["in_store"] == 4
    assert report["devices"][fleet.fp("bob")]["bundles"]["in_store"] == 2
    # Counts and times only: nothing typed, no application or window name.
    text = (out / "coverage.json").read_text()
    for content in ("jane.doe", "12345678", "xterm", "gedit", "notes"):
        assert content not in text
    # --json prints what coverage.json holds.
    again = run_audit(fleet.org, tmp_path / "again", "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout) == coverage(tmp_path / "again")


@pytest.fixture
def pair(org: Org, private_home: Paths) -> Any:
    """Ann uploaded three bundles (two sessions, then a withdrawal); Bob one."""
    homes = {"ann": device(org, private_home, "ann"), "bob": device(org, private_home, "bob")}
    ann, bob = homes["ann"], homes["bob"]
    names: list[str] = []
    for _ in range(2):
        approve(ann, record_session(ann, 10))
        names += upload(ann)
    withdraw(ann.ledger, frozenset({Category.KEYS}), active_policy(ann.paths))
    names += upload(ann)
    approve(bob, record_session(bob, 10))
    upload(bob)
    org.collector.stop()  # nothing rewrites a head file behind the test's back
    yield Fleet(org, homes), names
    for home in homes.values():
        home.close()


def found_wrong(out: Path, fleet: Fleet, status: str) -> dict[str, Any]:
    """Ann's entry, checked to be `status`, with Bob's intact beside it."""
    report = coverage(out)
    assert report["ok"] is False
    assert report["devices"][fleet.fp("bob")]["chain"]["status"] == "intact"
    ann: dict[str, Any] = report["devices"][fleet.fp("ann")]
    assert ann["chain"]["status"] == status
    return ann


@pytest.mark.parametrize(("which", "status"), [(1, "ledger-gap"), (2, "ledger-truncated")])
def test_a_bundle_removed_from_the_store(
    pair: tuple[Fleet, list[str]], tmp_path: Path, which: int, status: str
) -> None:
    fleet, names = pair
    (fleet.org.collector.data / "bundles" / f"{names[which]}.ctb").unlink()
    done = run_audit(fleet.org, tmp_path / "report")
    assert done.returncode == 1
    assert f"device {fleet.fp('ann')}: {status}" in done.stdout
    ann = found_wrong(tmp_path / "report", fleet, status)
    if status == "ledger-gap":  # nothing past the hole is proven: no facts, no file
        assert ann["chain"]["first_bad_seq"] is not None
        assert ann["facts"] is None
        assert "ledger_file" not in ann


def test_a_device_whose_bundles_are_all_gone_is_named(
    pair: tuple[Fleet, list[str]], tmp_path: Path
) -> None:
    fleet, names = pair
    for name in set(fleet.org.collector.bundles()) - set(names):  # Bob's
        (fleet.org.collector.data / "bundles" / f"{name}.ctb").unlink()
    done = run_audit(fleet.org, tmp_path / "report")
    assert done.returncode == 1
    bob = coverage(tmp_path / "report")["devices"][fleet.fp("bob")]
    assert bob["chain"]["status"] == "bundles-missing"
    assert bob["facts"] is None
    assert coverage(tmp_path / "report")["devices"][fleet.fp("ann")]["chain"]["status"] == "intact"


def head_file(fleet: Fleet, name: str) -> Path:
    return fleet.org.collector.data / "heads" / f"{fleet.fp(name).removeprefix('sha256:')}.json"


def test_a_witnessed_head_put_back_from_before_is_lowered(
    org: Org, private_home: Paths, tmp_path: Path
) -> None:
    ann = device(org, private_home, "ann")
    approve(ann, record_session(ann, 10))
    upload(ann)
    fleet = Fleet(org, {"ann": ann})
    old = head_file(fleet, "ann").read_bytes()  # genuinely signed by the collector
    approve(ann, record_session(ann, 10))
    upload(ann)
    org.collector.stop()
    head_file(fleet, "ann").write_bytes(old)
    done = run_audit(org, tmp_path / "report")
    assert done.returncode == 1
    entry = coverage(tmp_path / "report")["devices"][fleet.fp("ann")]
    assert entry["chain"]["status"] == "head-lowered"
    assert "an older head file was put back" in entry["chain"]["detail"]
    ann.close()


def test_a_witnessed_head_lowered_without_the_witness_key_is_forged(
    pair: tuple[Fleet, list[str]], tmp_path: Path
) -> None:
    fleet, _ = pair
    path = head_file(fleet, "ann")
    head = json.loads(path.read_text())
    path.write_text(json.dumps({**head, "seq": head["seq"] - 1}))
    done = run_audit(fleet.org, tmp_path / "report")
    assert done.returncode == 1
    ann = found_wrong(tmp_path / "report", fleet, "head-forged")
    assert ann["ledger_file"]["path"].startswith("ledgers/")  # the chain itself can be examined


def test_a_ledger_segment_rewritten_with_the_device_key(
    pair: tuple[Fleet, list[str]], tmp_path: Path
) -> None:
    """The withdrawal of `keys` turned into one of `scroll`, signed again by the
    device key, in a bundle rebuilt and signed again: the witnessed head says no."""
    fleet, names = pair
    home = fleet.homes["ann"]
    path = fleet.org.collector.data / "bundles" / f"{names[-1]}.ctb"
    seq = rewrite_the_withdrawal(path, fleet.org.keys_dir, fleet.org.keys, home.keys.device)
    done = run_audit(fleet.org, tmp_path / "report")
    assert done.returncode == 1
    ann = found_wrong(tmp_path / "report", fleet, "ledger-rewritten")
    assert f"record {seq} differs" in ann["chain"]["detail"]


def test_an_empty_store_is_an_empty_report(org: Org, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = ct(
        "org",
        "audit",
        "--from",
        str(empty),
        "--keys",
        str(org.keys_dir),
        "--witness-key",
        str(org.collector.data / "witness.pub"),
        "--out",
        str(tmp_path / "report"),
        check=False,
    )
    assert done.returncode == 0
    assert done.stderr.count("\n") == 1
    assert "no devices" in done.stderr
    report = coverage(tmp_path / "report")
    assert report["devices"] == {}
    assert report["ok"] is True


def test_a_missing_store_is_a_usage_error(org: Org, tmp_path: Path) -> None:
    done = ct(
        "org",
        "audit",
        "--from",
        str(tmp_path / "nowhere"),
        "--keys",
        str(org.keys_dir),
        "--witness-key",
        str(org.collector.data / "witness.pub"),
        "--out",
        str(tmp_path / "report"),
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "is not a directory" in done.stderr


def test_an_unreadable_bundle_is_named_and_the_rest_audited(
    pair: tuple[Fleet, list[str]], tmp_path: Path
) -> None:
    fleet, _ = pair
    junk = b"not a bundle at all" * 10
    name = hashlib.sha256(junk).hexdigest()
    (fleet.org.collector.data / "bundles" / f"{name}.ctb").write_bytes(junk)
    done = run_audit(fleet.org, tmp_path / "report")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"bundle {name[:16]}: malformed" in done.stdout
    report = coverage(tmp_path / "report")
    assert [(r["bundle"], r["reason"]) for r in report["rejected_bundles"]] == [(name, "malformed")]
    assert {d["chain"]["status"] for d in report["devices"].values()} == {"intact"}


def test_a_wrong_organisation_key_is_a_usage_error(
    pair: tuple[Fleet, list[str]], tmp_path: Path
) -> None:
    fleet, _ = pair
    generate(tmp_path / "other")
    done = run_audit(fleet.org, tmp_path / "report", keys=tmp_path / "other")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "sealed to another organisation key" in done.stderr


def test_a_store_on_s3_audits_as_its_directory_does(
    pair: tuple[Fleet, list[str]], tmp_path: Path, s3_endpoint: str, bucket: str
) -> None:
    fleet, _ = pair
    data = fleet.org.collector.data
    s3 = S3Store(bucket, "org/a", endpoint_url=s3_endpoint)
    for folder in ("bundles", "heads"):
        for path in (data / folder).iterdir():
            s3.put(f"{folder}/{path.name}", path.read_bytes())
    assert run_audit(fleet.org, tmp_path / "dir").returncode == 0
    done = ct(
        "org",
        "audit",
        "--from",
        f"s3://{bucket}/org/a",
        "--s3-endpoint",
        s3_endpoint,
        "--keys",
        str(fleet.org.keys_dir),
        "--witness-key",
        str(data),
        "--out",
        str(tmp_path / "s3"),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    on_s3, in_dir = coverage(tmp_path / "s3"), coverage(tmp_path / "dir")
    for key in ("devices", "witnessed_heads", "ledgers", "rejected_bundles"):
        assert on_s3[key] == in_dir[key]
    assert on_s3["store"].startswith(f"s3://{bucket}/org/a")


def test_the_dataset_is_proven_against_the_audited_ledgers_and_the_report_is_signed(
    fleet: Fleet, tmp_path: Path
) -> None:
    data, dataset = fleet.org.collector.data, tmp_path / "dataset"
    ct(
        "org", "ingest", "--from", str(data), "--keys", str(fleet.org.keys_dir),
        "--out", str(dataset), "--witness-key", str(data / "witness.pub"), "--quiet",
    )  # fmt: skip
    out = tmp_path / "report"
    done = run_audit(fleet.org, out, "--dataset", str(dataset))
    assert done.returncode == 0, done.stderr
    report = coverage(out)
    totals = report["proof"]["totals"]
    assert totals["violations"] == 0
    assert totals["rows"] == totals["rows_in_consent"] > 0
    assert set(report["proof"]["devices"]) == {fleet.fp("ann"), fleet.fp("bob")}
    files = {p.relative_to(dataset).as_posix(): p for p in dataset.rglob("*") if p.is_file()}
    assert report["dataset_files"] == {
        rel: hashlib.sha256(p.read_bytes()).hexdigest() for rel, p in files.items()
    }
    checked = ct("org", "audit", "check", str(out), "--officer-key", str(fleet.org.keys_dir))
    assert checked.stdout.startswith("ok: ")

    # Someone with write access to the dataset adds a row from before any consent.
    target = next(
        p
        for p in sorted((dataset / "events").rglob("part-*.parquet"))
        if "key_down" in pq.read_table(p, columns=["kind"]).column("kind").to_pylist()
    )
    row = inject(target, time=datetime(2020, 1, 1, tzinfo=UTC))
    bad = run_audit(fleet.org, tmp_path / "again", "--dataset", str(dataset))
    assert bad.returncode == 1
    (violation,) = coverage(tmp_path / "again")["proof"]["violations"]
    assert violation["row"] == row
    assert violation["rule"] in bad.stdout
    assert f"row {row}" in bad.stdout

    # A report changed after it was signed no longer checks.
    text = (out / "coverage.json").read_text().replace('"ok":true', '"ok":false')
    (out / "coverage.json").write_text(text)
    changed = ct("org", "audit", "check", str(out), check=False)
    assert changed.returncode == 1
    assert "coverage.json" in changed.stderr


def test_an_audit_without_an_officer_key_says_how_to_make_one(org: Org, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("bundle.key", "bundle.pub", "sign.key", "sign.pub"):
        source = org.keys_dir / name
        (keys / name).write_bytes(source.read_bytes())
        (keys / name).chmod(source.stat().st_mode & 0o777)
    done = run_audit(org, tmp_path / "report", keys=keys)
    assert done.returncode == 2
    assert "officer" in done.stderr
    assert "Traceback" not in done.stderr
