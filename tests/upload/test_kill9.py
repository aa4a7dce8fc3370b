"""`cleartrace upload --now` and `cleartrace org ingest` killed with SIGKILL at each step
(src/cleartrace/faults.py): the next run completes, nothing is lost or duplicated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cleartrace.categories import Category
from cleartrace.consent.signed_policy import active_policy
from cleartrace.consent.state import give, withdraw
from cleartrace.faults import ENV, TESTING
from cleartrace.home import Home
from cleartrace.org.ingest import ingest
from cleartrace.org.keys import load_private
from cleartrace.paths import Paths
from cleartrace.upload.bundle import open_bundle, parse_bundle
from cleartrace.upload.outbox import Outbox
from cleartrace.upload.uploader import Retry, Uploader
from tests.support.cli import ct
from tests.support.orgkit import Org, approve, enrolled, record_session


def ct_faulted(
    *args: str, fault: str | None = None, home: Path | None = None, armed: bool = True
) -> subprocess.CompletedProcess[str]:
    """`ct` with a fault point: the CLI is killed at `fault` (when `armed`)."""
    env = {k: v for k, v in os.environ.items() if k not in (ENV, TESTING)}
    if fault is not None:
        env[ENV] = fault
        if armed:
            env[TESTING] = "1"
    if home is not None:
        env["CLEARTRACE_HOME"] = str(home)
    return ct(*args, env=env, timeout=120, check=False)


def sessions_stored(org: Org) -> Counter[str]:
    """How many stored bundles hold each session's events."""
    keys = load_private(org.keys_dir)
    out: Counter[str] = Counter()
    for name in org.collector.bundles():
        bundle = parse_bundle((org.collector.data / "bundles" / f"{name}.ctb").read_bytes())
        if bundle.session is not None and open_bundle(bundle, keys).events.num_rows:
            out[bundle.session] += 1
    return out


def dataset_rows(out: Path) -> Counter[str]:
    """Rows of the events table per session."""
    rows: Counter[str] = Counter()
    for path in (out / "events").rglob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            rows[json.loads(line)["session"]] += 1
    return rows


UPLOAD_POINTS = [
    "upload.built",
    "upload.queued",
    "upload.stored",
    "upload.acknowledged",
    "upload.built@2",
    "upload.stored@2",
]


@pytest.mark.parametrize("point", UPLOAD_POINTS)
def test_an_upload_killed_at_any_step_completes_on_the_next_run(
    point: str, org: Org, private_home: Paths, tmp_path: Path
) -> None:
    home = enrolled(org, private_home)
    give(home.ledger, frozenset(Category), active_policy(private_home))
    sessions = [record_session(home, 20) for _ in range(2)]
    for session in sessions:
        approve(home, session)
    expected = {s: len(home.store.read_events(s)) for s in sessions}
    home.close()

    killed = ct_faulted("upload", "--now", fault=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    again = ct_faulted("upload", "--now")
    assert again.returncode == 0, again.stderr
    assert json.loads(ct_faulted("upload", "--now", "--json").stdout)["bundles"] == []

    assert sessions_stored(org) == {s: 1 for s in sessions}  # every session once
    home = Home.open(private_home, create=False)
    try:
        outbox = Outbox(home.paths.db)
        assert outbox.queued() == []
        outbox.close()
        assert [home.store.session(s).state for s in sessions] == ["uploaded", "uploaded"]
        acknowledged = [
            r["bundle"] for r in home.ledger.records() if r["kind"] == "bundle.uploaded"
        ]
        assert sorted(acknowledged) == org.collector.bundles()  # each stored bundle, once
    finally:
        home.close()
    summary = ingest(str(org.collector.data), org.keys_dir, tmp_path / "dataset")
    assert summary.ok
    assert dataset_rows(tmp_path / "dataset") == expected


def test_a_stray_fault_point_without_the_test_switch_kills_nothing(
    org: Org, private_home: Paths
) -> None:
    home = enrolled(org, private_home)
    give(home.ledger, frozenset(Category), active_policy(private_home))
    session = record_session(home, 5)
    approve(home, session)
    home.close()

    done = ct_faulted("upload", "--now", fault="upload.built", armed=False)
    assert done.returncode == 0, done.stderr
    assert sessions_stored(org) == {session: 1}


# -- ingest ---------------------------------------------------------------------------


def dataset_state(out: Path) -> dict[str, object]:
    """Every file of a dataset: its rows (Parquet) or bytes (the rest; no lock file)."""
    return {
        p.relative_to(out).as_posix(): (
            pq.read_table(p).to_pylist() if p.suffix == ".parquet" else p.read_bytes()
        )
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "lock"
    }


INGEST_POINTS = [
    "ingest.file",
    "ingest.file@3",
    "ingest.removed",
    "ingest.device",
    "ingest.saved",
]


@pytest.mark.parametrize("point", INGEST_POINTS)
def test_an_ingest_killed_at_any_step_gives_the_uninterrupted_dataset_on_the_next_run(
    point: str, org: Org, private_home: Paths, tmp_path: Path
) -> None:
    homes = [
        enrolled(org, private_home),
        enrolled(org, Paths(private_home.home.parent / "other", private_home.runtime)),
    ]
    up = {id(h): Uploader(h.paths, h.keys, retry=Retry(attempts=1)) for h in homes}
    for home in homes:
        give(home.ledger, frozenset(Category), active_policy(home.paths))
        for _ in range(2):
            approve(home, record_session(home, 20))
        up[id(home)].run()
    out = tmp_path / "dataset"
    first = ct_faulted(
        "org",
        "ingest",
        "--from",
        str(org.collector.data),
        "--keys",
        str(org.keys_dir),
        "--out",
        str(out),
    )
    assert first.returncode == 0, first.stderr
    # Later acts that rewrite files (a withdrawal) and remove them (a deletion).
    a, b = homes
    withdraw(a.ledger, frozenset({Category.KEYS}), active_policy(a.paths))
    gone = b.store.list_sessions()[0].id
    b.store.delete_session(
        gone, lambda conn: b.ledger.append_in(conn, "session.deleted", session=gone)
    )
    for home in homes:
        up[id(home)].run()
        home.close()

    argv = ("org", "ingest", "--from", str(org.collector.data), "--keys", str(org.keys_dir))
    killed = ct_faulted(*argv, "--out", str(out), fault=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    again = ct_faulted(*argv, "--out", str(out))
    assert again.returncode == 0, again.stderr
    reference = tmp_path / "reference"
    assert ct_faulted(*argv, "--out", str(reference)).returncode == 0
    assert dataset_state(out) == dataset_state(reference)
    assert dataset_rows(out)[gone] == 0
