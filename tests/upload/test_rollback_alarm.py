"""A store restored from an old backup: the device stops uploading and says so, in the
ledger, in `status` and in `outbox list` (real collector on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from cleartrace.categories import Category
from cleartrace.cli import main
from cleartrace.consent.signed_policy import active_policy
from cleartrace.consent.state import give
from cleartrace.errors import UploadError
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.review import approval
from cleartrace.store import ledger_rows
from cleartrace.upload.uploader import Retry, Uploader
from tests.support.orgkit import Org, approve, enrolled, make_org, record_session


def backup(db: Path, to: Path) -> None:
    with sqlite3.connect(db) as source, sqlite3.connect(to) as target:
        source.backup(target)


def restore(backup_file: Path, db: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    os.replace(backup_file, db)


def ledger(paths: Paths) -> list[dict[str, object]]:
    return ledger_rows.records_in(paths.db)


def test_an_old_backup_restored_leaves_an_alarm_and_uploads_nothing(
    org: Org, private_home: Paths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = enrolled(org, private_home)
    give(home.ledger, frozenset(Category), active_policy(private_home))
    up = Uploader(home.paths, home.keys, retry=Retry(attempts=1))
    first = record_session(home, 5)
    approve(home, first)
    up.run()
    old = tmp_path / "old.db"
    backup(home.paths.db, old)
    local = home.ledger.head()
    second = record_session(home, 5)
    approve(home, second)
    up.run()
    home.close()
    device_hex = home.ledger.device.removeprefix("sha256:")
    witnessed = requests.get(f"{org.collector.url}/v1/devices/{device_hex}/head", timeout=10).json()
    restore(old, private_home.db)
    before = org.collector.bundles()

    assert main(["upload", "--now"]) == 2
    assert "does not extend the head the collector witnessed" in capsys.readouterr().err
    assert org.collector.bundles() == before
    alarms = [r for r in ledger(private_home) if r["kind"] == "ledger.rollback"]
    assert len(alarms) == 1
    assert alarms[0]["witnessed"] == {"seq": witnessed["seq"], "hash": witnessed["hash"]}
    assert local is not None
    assert alarms[0]["local"] == {"seq": local[0], "hash": local[1]}
    assert set(alarms[0]) == {"v", "seq", "time", "kind", "prev", "sig", "witnessed", "local"}
    # A second try does not ledger it again.
    assert main(["upload", "--now"]) == 2
    assert len([r for r in ledger(private_home) if r["kind"] == "ledger.rollback"]) == 1

    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    alarm = json.loads(capsys.readouterr().out)["ledger_alarm"]
    assert alarm["kind"] == "ledger.rollback"
    assert alarm["witnessed"]["seq"] == witnessed["seq"]
    assert alarm["local"]["seq"] == local[0]
    assert main(["status"]) == 0
    assert "restored from an old backup" in capsys.readouterr().out
    assert main(["outbox", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ledger_alarm"]["seq"] == alarm["seq"]
    assert main(["outbox", "list"]) == 0
    assert "restored from an old backup" in capsys.readouterr().out
    # The officer's verifier knows the record: the ledger verifies as it is.
    exported = tmp_path / "ledger.jsonl"
    assert main(["ledger", "export", "--out", str(exported)]) == 0
    capsys.readouterr()
    assert main(["audit", "verify", str(exported)]) == 0, capsys.readouterr()


def test_a_409_for_a_bundle_queued_in_the_old_backup_raises_the_alarm_too(
    private_home: Paths, tmp_path: Path
) -> None:
    org = make_org(tmp_path / "org", extra=("--rate", "1/1h"))
    org.collector.start()
    try:
        _restored_outbox_gets_409(org, private_home, tmp_path)
    finally:
        org.collector.stop()


def _restored_outbox_gets_409(org: Org, private_home: Paths, tmp_path: Path) -> None:
    home = enrolled(org, private_home)
    give(home.ledger, frozenset(Category), active_policy(private_home))
    up = Uploader(home.paths, home.keys, retry=Retry(attempts=1))
    approve(home, record_session(home, 5))
    up.run()
    second = record_session(home, 5)
    approve(home, second)
    with pytest.raises(UploadError, match="too many uploads"):
        up.run()  # the second session's bundle stays queued
    old = tmp_path / "old.db"
    backup(home.paths.db, old)
    approval.hold(home.store, home.ledger, second)  # drops the queued bundle here
    org.collector.stop()
    org.collector.extra = ()
    org.collector.start()
    up.run()  # the hold travels; the collector witnesses a later head
    home.close()
    device_hex = home.ledger.device.removeprefix("sha256:")
    witnessed = requests.get(f"{org.collector.url}/v1/devices/{device_hex}/head", timeout=10).json()
    restore(old, private_home.db)
    before = org.collector.bundles()

    home = Home.open(private_home, create=False)
    try:
        # The restored outbox offers the old bundle first: the collector answers 409.
        with pytest.raises(UploadError, match="does not extend the head the collector witnessed"):
            Uploader(home.paths, home.keys, retry=Retry(attempts=1)).run()
        (alarm,) = [r for r in home.ledger.records() if r["kind"] == "ledger.rollback"]
        assert alarm["witnessed"] == {"seq": witnessed["seq"], "hash": witnessed["hash"]}
    finally:
        home.close()
    assert org.collector.bundles() == before


# -- a collector that lies about heads -----------------------------------------------


class FakeHeads:
    """Answers as the collector: every head query gets `seq` and a hash never seen."""

    def __init__(self) -> None:
        self.seq = 1000
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"seq": fake.seq, "hash": secrets.token_hex(32)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def point_enrolment_at(paths: Paths, url: str) -> None:
    """Send this device's uploads to `url` (what a hostile network achieves by answering)."""
    path = paths.home / "enrolment.json"
    enrolment = json.loads(path.read_text())
    enrolment["collector"] = url
    path.write_text(json.dumps(enrolment))


def alarms(paths: Paths) -> list[dict[str, object]]:
    return [r for r in ledger(paths) if r["kind"] == "ledger.rollback"]


def test_fake_heads_make_the_device_sign_one_alarm_not_one_per_head(
    org: Org, private_home: Paths
) -> None:
    home = enrolled(org, private_home)
    give(home.ledger, frozenset(Category), active_policy(private_home))
    fake = FakeHeads()
    try:
        point_enrolment_at(private_home, fake.url)
        up = Uploader(home.paths, home.keys, retry=Retry(attempts=1))
        for _ in range(3):  # a new fake hash every pass
            with pytest.raises(UploadError, match="does not extend"):
                up.run()
        assert len(alarms(private_home)) == 1
        fake.seq = 10  # lower than the head already alarmed: nothing new
        with pytest.raises(UploadError, match="does not extend"):
            up.run()
        assert len(alarms(private_home)) == 1
        fake.seq = 2000  # higher: the officer should see it
        with pytest.raises(UploadError, match="does not extend"):
            up.run()
        assert [a["witnessed"]["seq"] for a in alarms(private_home)] == [1000, 2000]  # type: ignore[index]
    finally:
        fake.close()
        home.close()


def test_the_alarm_clears_once_the_collector_acknowledges_a_bundle_again(
    org: Org, private_home: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    home = enrolled(org, private_home)
    give(home.ledger, frozenset(Category), active_policy(private_home))
    home.close()
    fake = FakeHeads()
    try:
        point_enrolment_at(private_home, fake.url)
        assert main(["upload", "--now"]) == 2
    finally:
        fake.close()
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ledger_alarm"]["witnessed"]["seq"] == 1000
    # The answer came from elsewhere; the real collector's head is in this ledger.
    point_enrolment_at(private_home, org.collector.url)
    assert main(["upload", "--now"]) == 0, capsys.readouterr().err
    assert [r["kind"] for r in ledger(private_home)][-1] == "bundle.uploaded"
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ledger_alarm"] is None
    assert main(["outbox", "list"]) == 0
    assert "restored from an old backup" not in capsys.readouterr().out
