"""The organisation's own ledger and subject requests, against a real collector on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.categories import Category
from cleartrace.consent.records import record_hash
from cleartrace.consent.signed_policy import active_policy
from cleartrace.consent.state import give
from cleartrace.errors import LedgerBroken
from cleartrace.home import Home
from cleartrace.org.blobstore import S3Store
from cleartrace.org.keys import load_private
from cleartrace.org.org_ledger import OrgLedgerFile, load_ledger_key, next_record, verify_chain
from cleartrace.org.receipts import check_receipt
from cleartrace.org.witness import load_public
from cleartrace.paths import Paths
from cleartrace.upload.bundle import parse_bundle
from cleartrace.upload.uploader import Retry, Uploader
from tests.support.cli import ct
from tests.support.orgkit import (
    Org,
    approve,
    enrolled,
    org_audit,
    record_session,
    record_text,
)

NO_WAIT = Retry(attempts=2, base=0.01, cap=0.01)
CANARY = "qzcanaryxv"


@dataclass
class World:
    org: Org
    homes: dict[str, Home]
    dataset: Path

    @property
    def data(self) -> Path:
        return self.org.collector.data

    @property
    def ledger(self) -> Path:
        return self.dataset.with_name(self.dataset.name + ".org-ledger.jsonl")

    def subject(self, name: str) -> str:
        devices = json.loads(ct("org", "devices", "--data", str(self.data), "--json").stdout)
        (found,) = [d["subject"] for d in devices if d["device"] == self.homes[name].ledger.device]
        return str(found)

    def ingest(self) -> Any:
        return ct(
            "org", "ingest", "--from", str(self.data), "--keys", str(self.org.keys_dir),
            "--out", str(self.dataset), "--witness-key", str(self.data / "witness.pub"),
            "--quiet", check=False,
        )  # fmt: skip

    def audit(self, out: Path) -> Any:
        return org_audit(self.org, out, "--dataset", str(self.dataset))

    def subject_cmd(self, action: str, subject: str, *extra: str) -> Any:
        return ct(
            "org", "subject", action, subject, "--from", str(self.data),
            "--keys", str(self.org.keys_dir), "--dataset", str(self.dataset), *extra,
            check=False,
        )  # fmt: skip

    def rows(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for path in sorted((self.dataset / "events").rglob("part-*.parquet")):
            out += pq.read_table(path).to_pylist()
        return out


def upload(home: Home) -> list[str]:
    return Uploader(home.paths, home.keys, retry=NO_WAIT).run().uploaded


@pytest.fixture
def world(org: Org, private_home: Paths, tmp_path: Path) -> Iterator[World]:
    """Two devices enrolled on tokens, each with an approved, uploaded session, ingested."""
    homes = {}
    for name in ("ann", "bob"):
        home = enrolled(org, Paths(private_home.home.parent / name, private_home.runtime))
        give(home.ledger, frozenset(Category), active_policy(home.paths))
        homes[name] = home
    approve(homes["ann"], record_text(homes["ann"], CANARY))
    approve(homes["bob"], record_session(homes["bob"], 20))
    for home in homes.values():
        upload(home)
    made = World(org, homes, tmp_path / "dataset")
    assert made.ingest().returncode == 0
    yield made
    for home in homes.values():
        home.close()


def kinds(path: Path) -> list[str]:
    return [json.loads(line)["kind"] for line in path.read_text().splitlines()[1:]]


def test_every_org_act_is_in_a_verified_org_ledger(world: World, tmp_path: Path) -> None:
    out = tmp_path / "report"
    done = world.audit(out)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((out / "coverage.json").read_text())["org_ledger"]
    assert report["status"] == "intact"
    assert report["chains"]["officer"]["status"] == "intact"
    assert report["chains"]["collector"]["status"] == "intact"
    # The collector's acts, signed by its witness key, appended with each act.
    collector = out / "org-ledger" / "collector.jsonl"
    assert kinds(collector) == ["tokens.issued", "device.admitted"] * 2
    witness = load_public(world.data / "witness.pub")
    _, records = verify_chain(collector.read_bytes(), witness)
    admitted = [r for r in records if r["kind"] == "device.admitted"]
    assert [r["device"] for r in admitted] == [h.ledger.device for h in world.homes.values()]
    assert [r["subject"] for r in admitted] == [world.subject("ann"), world.subject("bob")]
    assert {r["tokens"] for r in records if r["kind"] == "tokens.issued"} == {1}
    # The officer side's acts, signed by the organisation's key: this audit included.
    officer = out / "org-ledger" / "officer.jsonl"
    assert officer.read_bytes() == world.ledger.read_bytes()
    assert kinds(officer) == ["ingest.run", "audit.run"]
    signing = load_ledger_key(world.org.keys_dir).public_key()
    _, records = verify_chain(officer.read_bytes(), signing)
    manifest = world.dataset / "_cleartrace" / "manifest.json"
    assert records[0]["digest"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert records[0]["rows"] == len(world.rows()) > 0
    assert records[1]["devices"] == 2
    # Ids, counts, digests and times only.
    for path in (collector, officer):
        assert CANARY.encode() not in path.read_bytes()
    assert ct("org", "audit", "check", str(out)).returncode == 0


def test_ingest_records_its_run_without_the_policy_signing_key(
    world: World, tmp_path: Path
) -> None:
    keys = tmp_path / "ingest-keys"
    keys.mkdir(mode=0o700)
    for name in ("bundle.key", "bundle.pub"):
        source = world.org.keys_dir / name
        (keys / name).write_bytes(source.read_bytes())
        (keys / name).chmod(source.stat().st_mode & 0o777)
    ledger = tmp_path / "org-ledger.jsonl"
    ct(
        "org", "ingest", "--from", str(world.data), "--keys", str(keys), "--out",
        str(world.dataset), "--org-ledger", str(ledger), "--quiet",
    )  # fmt: skip
    assert oct((keys / "ledger.key").stat().st_mode & 0o777) == "0o600"
    _, records = verify_chain(ledger.read_bytes(), load_ledger_key(keys).public_key())
    assert [r["kind"] for r in records] == ["ingest.run"]


def test_an_org_ledger_edited_or_cut_fails_the_audit(world: World, tmp_path: Path) -> None:
    assert world.audit(tmp_path / "first").returncode == 0
    assert world.audit(tmp_path / "second").returncode == 0  # ingest.run, audit.run x2
    lines = world.ledger.read_text().splitlines(keepends=True)
    edited = json.loads(lines[1])
    edited["rows"] += 1
    world.ledger.write_text(lines[0] + json.dumps(edited) + "\n" + "".join(lines[2:]))
    done = world.audit(tmp_path / "edited")
    assert done.returncode == 1
    assert "org ledger officer" in done.stdout
    assert "ledger-bad-signature" in done.stdout
    chain = json.loads((tmp_path / "edited" / "coverage.json").read_text())["org_ledger"]
    assert chain["status"] == "broken"
    assert chain["chains"]["officer"]["first_bad_seq"] == 1
    # Nothing is appended to a broken ledger: the copy in the report is what was found.
    assert world.ledger.read_text().count("\n") == len(lines)

    world.ledger.write_text("".join(lines[:2] + lines[3:]))  # record 2 of 3 dropped
    done = world.audit(tmp_path / "cut")
    assert done.returncode == 1
    assert "ledger-gap" in done.stdout
    assert "record 2 is missing" in done.stdout


def test_a_collector_record_edited_in_the_registry_fails_the_audit(
    world: World, tmp_path: Path
) -> None:
    world.org.collector.stop()
    conn = sqlite3.connect(world.data / "collector.db")
    (text,) = conn.execute("SELECT record FROM org_ledger WHERE seq = 1").fetchone()
    record = json.loads(text)
    record["tokens"] = 5
    conn.execute("UPDATE org_ledger SET record = ? WHERE seq = 1", (json.dumps(record),))
    conn.commit()
    conn.close()
    done = world.audit(tmp_path / "report")
    assert done.returncode == 1
    assert "org ledger collector" in done.stdout
    assert "ledger-bad-signature" in done.stdout


def test_a_subject_export_holds_that_subject_and_no_other(world: World, tmp_path: Path) -> None:
    ann, bob = world.subject("ann"), world.subject("bob")
    out = tmp_path / "ann.json"
    done = world.subject_cmd("export", ann, "--out", str(out))
    assert done.returncode == 0, done.stderr
    raw = out.read_bytes()
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    doc = json.loads(raw)
    mine = [r for r in world.rows() if r["subject"] == ann]
    assert len(doc["rows"]) == len(mine) > 0
    assert {r["subject"] for r in doc["rows"]} == {ann}
    assert "".join(r["char"] or "" for r in doc["rows"] if r["kind"] == "key_down") == CANARY
    home = world.homes["ann"]
    witnessed = [r["witnessed"] for r in home.ledger.records() if r["kind"] == "bundle.uploaded"]
    assert doc["ledgers"] == {home.ledger.device: home.ledger.records()[: witnessed[-1]["seq"]]}
    assert {b["header"]["subject"] for b in doc["bundles"]} == {ann}
    assert bob.encode() not in raw
    assert world.homes["bob"].ledger.device.encode() not in raw
    (record,) = [json.loads(x) for x in world.ledger.read_text().splitlines()[2:]]
    assert record["kind"] == "subject.exported"
    assert record["subject"] == ann
    assert record["rows"] == len(mine)
    assert record["digest"] == hashlib.sha256(raw).hexdigest()


def test_an_unknown_subject_is_a_clear_usage_error(world: World, tmp_path: Path) -> None:
    done = world.subject_cmd("export", "0" * 32, "--out", str(tmp_path / "x.json"))
    assert done.returncode == 2
    assert "nothing is held about subject" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_erased_subject_stays_erased(world: World, tmp_path: Path) -> None:
    ann, bob = world.subject("ann"), world.subject("bob")
    device = world.homes["ann"].ledger.device
    bob_rows = [r for r in world.rows() if r["subject"] == bob]
    assert any(r["subject"] == ann for r in world.rows())
    done = world.subject_cmd("erase", ann)
    assert done.returncode == 0, done.stderr
    assert not [r for r in world.rows() if r["subject"] == ann]
    assert [r for r in world.rows() if r["subject"] == bob] == bob_rows
    headers = [parse_bundle(p.read_bytes()).header for p in (world.data / "bundles").glob("*")]
    assert {h["subject"] for h in headers} == {bob}
    assert not (world.data / "heads" / f"{device.removeprefix('sha256:')}.json").exists()
    # The receipt: signed by the organisation's key, and recorded in its ledger.
    receipt = world.data / "erased" / f"{ann}.json"
    obj = json.loads(receipt.read_bytes())
    check_receipt(obj, load_private(world.org.keys_dir).signing_public)
    assert obj["devices"] == [device]
    assert obj["rows"] > 0
    assert CANARY.encode() not in receipt.read_bytes()
    last = json.loads(world.ledger.read_text().splitlines()[-1])
    assert last["kind"] == "subject.erased"
    assert last["digest"] == hashlib.sha256(receipt.read_bytes()).hexdigest()

    # A later ingest does not bring it back, even once the device uploads again.
    assert world.ingest().returncode == 0
    ann_home = world.homes["ann"]
    approve(ann_home, record_session(ann_home, 20))
    assert upload(ann_home)
    done = world.ingest()
    assert done.returncode == 0, done.stdout
    assert not [r for r in world.rows() if r["subject"] == ann]
    # The audit holds: the erasure is recorded, and the erased device is no gap.
    out = tmp_path / "report"
    audited = world.audit(out)
    assert audited.returncode == 0, audited.stdout
    report = json.loads((out / "coverage.json").read_text())
    assert device not in report["devices"]
    assert report["org_ledger"]["erasures"] == [
        {"subject": ann, "status": "recorded", "digest": last["digest"]}
    ]


def test_an_unsigned_erasure_receipt_does_not_stop_ingest(world: World) -> None:
    """Whoever can write the store but has no signing key cannot make ingest pass
    over a person's data with an erasure receipt of their own."""
    ann = world.subject("ann")
    device = world.homes["ann"].ledger.device
    (world.data / "erased").mkdir(exist_ok=True)
    planted = {"v": 1, "type": "cleartrace-erasure-receipt", "subject": ann,
               "devices": [device], "sig": "AAAA"}  # fmt: skip
    (world.data / "erased" / f"{ann}.json").write_text(json.dumps(planted))
    done = world.ingest()
    assert done.returncode == 0, done.stdout + done.stderr
    assert [r for r in world.rows() if r["subject"] == ann]


def test_a_planted_erasure_receipt_fails_the_audit(world: World, tmp_path: Path) -> None:
    bob = world.subject("bob")
    (world.data / "erased").mkdir()
    fake = {"subject": bob, "devices": [world.homes["bob"].ledger.device]}
    (world.data / "erased" / f"{bob}.json").write_text(json.dumps(fake))
    done = world.audit(tmp_path / "report")
    assert done.returncode == 1
    assert f"erasure of subject {bob}: receipt-invalid" in done.stdout


def test_a_subject_is_erased_from_a_store_on_s3(
    world: World, tmp_path: Path, s3_endpoint: str, bucket: str
) -> None:
    s3 = S3Store(bucket, "org", endpoint_url=s3_endpoint)
    for folder in ("bundles", "heads"):
        for path in (world.data / folder).iterdir():
            s3.put(f"{folder}/{path.name}", path.read_bytes())
    ann, bob = world.subject("ann"), world.subject("bob")
    done = ct(
        "org", "subject", "erase", ann, "--from", f"s3://{bucket}/org", "--s3-endpoint",
        s3_endpoint, "--keys", str(world.org.keys_dir), "--dataset", str(world.dataset),
    )  # fmt: skip
    assert f"erased/{ann}.json" in done.stdout
    left = [parse_bundle(s3.get(k)).header["subject"] for k in s3.list("bundles/")]
    assert left == [bob]
    assert s3.list("erased/") == [f"erased/{ann}.json"]
    assert {r["subject"] for r in world.rows()} == {bob}


def test_a_subject_export_from_a_json_lines_dataset(world: World, tmp_path: Path) -> None:
    jsonl = tmp_path / "jsonl-dataset"
    ct(
        "org", "ingest", "--from", str(world.data), "--keys", str(world.org.keys_dir),
        "--out", str(jsonl), "--format", "jsonl", "--quiet",
    )  # fmt: skip
    ann, out = world.subject("ann"), tmp_path / "ann.json"
    ct(
        "org", "subject", "export", ann, "--from", str(world.data),
        "--keys", str(world.org.keys_dir), "--dataset", str(jsonl), "--out", str(out),
    )  # fmt: skip
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == len([r for r in world.rows() if r["subject"] == ann]) > 0
    assert {r["subject"] for r in rows} == {ann}


def test_no_record_is_appended_to_a_ledger_cut_edited_or_of_another_key(tmp_path: Path) -> None:
    key, path = Ed25519PrivateKey.generate(), tmp_path / "org-ledger.jsonl"
    ledger = OrgLedgerFile(path, key)
    for rows in (1, 2, 3):
        ledger.append("ingest.run", bundles=1, rows=rows, digest="a" * 64)
    lines = path.read_text().splitlines(keepends=True)
    last = json.loads(lines[-1])
    last["rows"] = 30
    path.write_text("".join(lines[:-1]) + json.dumps(last) + "\n")
    with pytest.raises(LedgerBroken) as edited:
        ledger.append("ingest.run", bundles=1, rows=4, digest="a" * 64)
    assert edited.value.reason == "ledger-bad-signature"
    path.write_text("".join(lines[:2] + lines[3:]))  # record 2 dropped
    with pytest.raises(LedgerBroken) as cut:
        ledger.append("ingest.run", bundles=1, rows=4, digest="a" * 64)
    assert cut.value.reason == "ledger-gap"
    path.write_text("".join(lines))
    with pytest.raises(LedgerBroken) as foreign:
        OrgLedgerFile(path, Ed25519PrivateKey.generate()).append(
            "ingest.run", bundles=1, rows=4, digest="a" * 64
        )
    assert foreign.value.reason == "ledger-foreign"
    assert path.read_text() == "".join(lines)
    with pytest.raises(ValueError, match="'subject'"):
        ledger.append("subject.erased", subject="typed text", bundles=1, rows=1, digest="a" * 64)


def test_the_collector_never_signs_on_top_of_an_org_record_it_did_not_sign() -> None:
    """Its next signature would vouch for a record edited in collector.db
    (consent/chain.py, one signature per run)."""
    key = Ed25519PrivateKey.generate()
    first = next_record(None, "tokens.issued", {"tokens": 1}, key)
    assert next_record(first, "tokens.issued", {"tokens": 2}, key)["prev"] == record_hash(first)
    with pytest.raises(LedgerBroken) as edited:
        next_record({**first, "tokens": 5}, "tokens.issued", {"tokens": 2}, key)
    assert edited.value.reason == "ledger-bad-signature"
