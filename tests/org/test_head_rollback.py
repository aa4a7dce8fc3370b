"""A store rolled back to an older signed head: a real device uploads to a real
collector, withdraws consent, and whoever can write the store puts the old
head file back and removes the newest bundle. Ingest must refuse the device,
and no withdrawn row may come back; the running collector must put the head
file right by itself, in a directory and on S3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest

from cleartrace.categories import Category
from cleartrace.cli import main
from cleartrace.consent.signed_policy import active_policy
from cleartrace.consent.state import give
from cleartrace.org.blobstore import DirStore
from cleartrace.org.collector import Collector
from cleartrace.org.keys import OrgKeys
from cleartrace.org.registry import Registry
from cleartrace.org.serve import _rechecking_heads
from cleartrace.org.witness import load_or_create
from cleartrace.paths import Paths
from cleartrace.upload.bundle import parse_bundle
from tests.support.cli import ct
from tests.support.org_device import Device
from tests.support.org_process import collector_running
from tests.support.orgkit import Org, approve, aws_env, enrolled, record_session
from tests.support.waiting import wait_for


def ingest(org: Org, dataset: Path, *extra: str) -> dict[str, Any]:
    done = ct(
        "org",
        "ingest",
        "--from",
        str(org.collector.data),
        "--keys",
        str(org.keys_dir),
        "--out",
        str(dataset),
        "--witness-key",
        str(org.collector.data / "witness.pub"),
        "--quiet",
        "--json",
        *extra,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def categories(dataset: Path) -> list[str]:
    files = sorted(dataset.glob("events/day=*/device=*/*.parquet"))
    if not files:
        return []
    query = duckdb.sql(
        "SELECT category FROM read_parquet(?, hive_partitioning=true)",
        params=[[str(f) for f in files]],
    )
    return [row[0] for row in query.fetchall()]


def upload(capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["upload", "--now", "--json"]) == 0
    bundles: list[str] = json.loads(capsys.readouterr().out)["bundles"]
    return bundles


def test_an_old_head_put_back_with_the_newest_bundle_removed_rejects_the_device(
    org: Org, private_home: Paths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = enrolled(org, private_home)
    give(home.ledger, frozenset(Category), active_policy(private_home))
    device_hex = home.ledger.device.removeprefix("sha256:")
    approve(home, record_session(home, 50))
    home.close()
    upload(capsys)
    dataset = tmp_path / "dataset"
    first = ingest(org, dataset)
    assert first["rejected"] == []
    assert "keys" in categories(dataset)

    head_file = org.collector.data / "heads" / f"{device_hex}.json"
    old_head = head_file.read_bytes()
    assert main(["consent", "withdraw", "--category", "keys"]) == 0
    capsys.readouterr()
    (withdrawal,) = upload(capsys)
    assert json.loads(head_file.read_bytes())["bundle"] == withdrawal
    second = ingest(org, dataset)
    assert second["rejected"] == []
    assert "keys" not in categories(dataset)
    assert categories(dataset)  # the other categories' rows stay

    # Whoever can write the store rolls it back to before the withdrawal.
    head_file.write_bytes(old_head)
    (org.collector.data / "bundles" / f"{withdrawal}.ctb").unlink()

    third = ingest(org, dataset)
    assert third["devices_rejected"] == {home.ledger.device: "head-rollback"}
    assert {r["reason"] for r in third["rejected"]} == {"head-rollback"}
    assert "keys" not in categories(dataset)
    # A first ingest into a new dataset has no memory of the newer head, but the
    # collector's registry has: with it as the authority the rollback shows too.
    fresh = tmp_path / "fresh"
    first_run = ingest(org, fresh, "--heads-from", str(org.collector.data))
    assert first_run["devices_rejected"] == {home.ledger.device: "head-rollback"}
    assert "keys" not in categories(fresh)


def test_a_head_file_put_back_while_the_collector_runs_is_rewritten(
    tmp_path: Path, org_keys: OrgKeys
) -> None:
    with collector_running(tmp_path / "data", "--recheck-heads", "1") as c:
        device = Device(org_keys.bundle_public)
        assert device.enroll(c.url, c.tokens()[0]).status_code == 201
        assert device.upload(c.url)[0].status_code == 201
        head_file = c.data / "heads" / f"{device.hex}.json"
        old = head_file.read_bytes()
        assert device.upload(c.url)[0].status_code == 201
        new = head_file.read_bytes()
        assert json.loads(new)["counter"] == json.loads(old)["counter"] + 1
        head_file.write_bytes(old)
        wait_for(lambda: head_file.read_bytes() == new, timeout=30, what="the head file rewritten")
    assert f"rewrote 1 head file(s) to match the registry (devices {device.hex[:16]})" in (
        c.stderr()
    )


def test_on_s3_head_files_are_put_right_at_start(
    tmp_path: Path, org_keys: OrgKeys, s3_endpoint: str, bucket: str
) -> None:
    store = ("--store", f"s3://{bucket}/org", "--s3-endpoint", s3_endpoint)
    env = aws_env(s3_endpoint)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    key = "org/heads/{}.json"
    device = Device(org_keys.bundle_public)
    with collector_running(tmp_path / "data", *store, env=env) as c:
        assert device.enroll(c.url, c.tokens()[0]).status_code == 201
        assert device.upload(c.url)[0].status_code == 201
        old = s3.get_object(Bucket=bucket, Key=key.format(device.hex))["Body"].read()
        assert device.upload(c.url)[0].status_code == 201
        new = s3.get_object(Bucket=bucket, Key=key.format(device.hex))["Body"].read()
    s3.put_object(Bucket=bucket, Key=key.format(device.hex), Body=old)
    with collector_running(tmp_path / "data", *store, env=env):
        got = s3.get_object(Bucket=bucket, Key=key.format(device.hex))["Body"].read()
    assert got == new


@pytest.mark.parametrize("seconds", ["nan", "inf", "0.5", "-1"])
def test_recheck_heads_must_be_a_finite_number_of_seconds_from_one(
    tmp_path: Path, seconds: str
) -> None:
    done = ct(
        "org",
        "serve",
        "--data",
        str(tmp_path / "data"),
        "--port",
        "0",
        "--recheck-heads",
        seconds,
        check=False,
    )
    assert done.returncode == 2
    assert "--recheck-heads" in done.stderr


class _FailingOnce(DirStore):
    """A store whose first read fails with an error no store should raise."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.failed = False

    def get(self, key: str) -> bytes:
        if not self.failed:
            self.failed = True
            raise RuntimeError("an unexpected failure")
        return super().get(key)


def test_the_recheck_survives_an_unexpected_error(
    tmp_path: Path, org_keys: OrgKeys, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    registry = Registry.open(data)
    try:
        store = _FailingOnce(data)
        collector = Collector(registry, store, witness=load_or_create(data))
        device = Device(org_keys.bundle_public)
        (token,) = registry.issue_tokens(1)
        registry.enroll(token, device.public)
        for _ in range(2):
            _, raw, head = device.bundle()
            collector.heads.accept(parse_bundle(raw))
            device.witnessed = head
        head_file = data / "heads" / f"{device.hex}.json"
        new = head_file.read_bytes()
        head_file.write_bytes(b"{}")
        with _rechecking_heads(collector, 0.05):
            wait_for(
                lambda: head_file.read_bytes() == new, timeout=30, what="the head file rewritten"
            )
        assert store.failed
        assert "RuntimeError" in caplog.text
        assert "an unexpected failure" not in caplog.text
    finally:
        registry.close()


def test_a_recheck_pass_asked_to_stop_rewrites_nothing_more(
    tmp_path: Path, org_keys: OrgKeys
) -> None:
    data = tmp_path / "data"
    registry = Registry.open(data)
    try:
        collector = Collector(registry, DirStore(data), witness=load_or_create(data))
        device = Device(org_keys.bundle_public)
        (token,) = registry.issue_tokens(1)
        registry.enroll(token, device.public)
        _, raw, device.witnessed = device.bundle()
        collector.heads.accept(parse_bundle(raw))
        head_file = data / "heads" / f"{device.hex}.json"
        head_file.write_bytes(b"{}")
        assert collector.heads.rewrite(stop=lambda: True) == 0
        assert head_file.read_bytes() == b"{}"
        assert collector.heads.rewrite() == 1
    finally:
        registry.close()
