"""`cleartrace org move-state`: a collector's state moved from DATA/collector.db
into PostgreSQL, so that the one collector a team started with becomes a fleet
without enrolling any device again.

Real processes throughout: a collector on SQLite enrols devices and takes their
bundles, is stopped, its state is moved, and a collector on the PostgreSQL
state (the session's throwaway cluster) serves the same devices on from where
they were: their next bundles build on the heads witnessed before, a token
issued before and never used enrols, one used before does not, counters go on
upwards, and the org ledger goes on as one chain signed by one key.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from cleartrace import faults
from cleartrace.org.keys import OrgKeys
from cleartrace.org.org_ledger import COLLECTOR, export_lines, verify_chain
from cleartrace.org.registry_db import DB_NAME, read_devices, read_org_ledger
from cleartrace.org.state import STATE_FILE
from cleartrace.org.state_move import KEPT_NAME
from cleartrace.org.witness import WITNESS_KEY, WITNESS_PUB, load_public, verify_head
from cleartrace.suites import OrgPublicKey
from tests.support.cli import ct
from tests.support.org_device import Device
from tests.support.org_process import collector_running, issue_tokens, leftovers
from tests.support.postgres import Postgres


def _single(tmp_path: Path, org_keys: OrgKeys) -> tuple[Path, list[_Device], list[str]]:
    """A collector on DATA/collector.db that enrolled two devices, took two bundles
    of each and issued two more tokens; stopped. Its DATA, the devices, and the
    tokens: [used, unused, unused]."""
    data = tmp_path / "data"
    with collector_running(data) as running:
        tokens = running.tokens(2)
        devices = [_Device(org_keys.bundle_public) for _ in tokens]
        for device, token in zip(devices, tokens, strict=True):
            assert device.enroll(running.url, token).status_code == 201
            for _ in range(2):
                answer, name, raw = device.upload(running.url, events=40, records=2)
                assert answer.status_code == 201, answer.text
                device.sent.append((name, raw))
        spare = running.tokens(2)
    return data, devices, [tokens[0], *spare]


class _Device(Device):
    """A device that keeps what it sent."""

    def __init__(self, org_key: OrgPublicKey) -> None:
        super().__init__(org_key)
        self.sent: list[tuple[str, bytes]] = []


def _move(data: Path, url: str, *more: str, check: bool = True) -> dict[str, object]:
    done = ct("org", "move-state", "--data", str(data), "--to", url, "--json", *more, check=check)
    return dict(json.loads(done.stdout)) if done.returncode == 0 else {"exit": done.returncode}


def test_a_moved_collector_serves_its_devices_on_from_where_they_were(
    tmp_path: Path, postgres: Postgres, org_keys: OrgKeys
) -> None:
    data, devices, (used, unused, _) = _single(tmp_path, org_keys)
    before_devices = read_devices(data)
    before_ledger = read_org_ledger(data)
    assert before_ledger is not None
    top = max(d.head_counter for d in before_devices.values())
    url = postgres.new_database()

    moved = _move(data, url)
    assert moved["copied"] is True
    assert (moved["tokens"], moved["unused_tokens"], moved["devices"]) == (4, 2, 2)
    assert (moved["bundles"], moved["org_ledger"], moved["counter"]) == (4, 4, top)
    # DATA is a fleet process's now: no collector.db, a kept copy, state.json.
    assert not (data / DB_NAME).exists()
    assert not (data / f"{DB_NAME}-wal").exists()
    assert (data / KEPT_NAME).stat().st_mode & 0o777 == 0o600
    assert json.loads((data / STATE_FILE).read_text())["state"] == url
    assert leftovers(data) == []
    assert read_devices(url) == before_devices
    assert read_org_ledger(url) == before_ledger
    # Without --state, a command on DATA refuses, naming the state.
    refused = ct("org", "devices", "--data", str(data), check=False)
    assert refused.returncode == 2
    assert f"--state '{url}'" in refused.stderr

    # A second process of the fleet: another DATA with a copy of the witness key.
    second = tmp_path / "data2"
    second.mkdir(mode=0o700)
    for name in (WITNESS_KEY, WITNESS_PUB):
        shutil.copy2(data / name, second / name)
    with (
        collector_running(data, state=url) as first,
        collector_running(second, "--store", str(data), state=url) as other,
    ):
        for device, running in zip(devices, (first, other), strict=True):
            answer, _, _ = device.upload(running.url, events=40, records=1)
            assert answer.status_code == 201, answer.text
            # A bundle taken before the move, sent again: already stored.
            again = device.put(running.url, *device.sent[0])
            assert again.status_code == 200, again.text
            assert again.json()["stored"] is False
        newcomer = Device(org_keys.bundle_public)
        assert newcomer.enroll(other.url, unused).status_code == 201
        late = Device(org_keys.bundle_public).enroll(first.url, used)
        assert late.status_code == 401
        assert late.json()["reason"] == "bad-token"
    after = read_devices(url)
    witness = load_public(data)
    for device in devices:
        row = after[device.device]
        assert (row.head.seq, row.head.hash) == device.witnessed
        assert row.subject == before_devices[device.device].subject
        assert row.head_counter > top  # above every head file written before the move
        head_file = json.loads((data / "heads" / f"{device.hex}.json").read_text())
        verify_head(head_file, witness)
        assert head_file["counter"] == row.head_counter
    ledger = read_org_ledger(url)
    assert ledger is not None
    assert ledger[: len(before_ledger)] == before_ledger
    assert ledger[-1]["kind"] == "device.admitted"
    assert ledger[-1]["device"] == newcomer.device
    verify_chain(export_lines(COLLECTOR, witness, ledger), witness)


def test_a_move_killed_after_its_commit_is_finished_by_running_it_again(
    tmp_path: Path, postgres: Postgres, org_keys: OrgKeys
) -> None:
    data, _, _ = _single(tmp_path, org_keys)
    url = postgres.new_database()
    env = {**os.environ, faults.TESTING: "1", faults.ENV: "state.copied"}
    killed = ct("org", "move-state", "--data", str(data), "--to", url, env=env, check=False)
    assert killed.returncode == -9
    # Copied, but DATA is still the single collector's: it would serve on as before.
    assert (data / DB_NAME).is_file()
    assert not (data / STATE_FILE).exists()
    copied = read_devices(url)
    assert copied == read_devices(data)
    again = _move(data, url)
    assert again["copied"] is False
    assert again["devices"] == 2
    assert read_devices(url) == copied  # nothing twice
    assert not (data / DB_NAME).exists()
    assert (data / KEPT_NAME).is_file()
    done = ct("org", "move-state", "--data", str(data), "--to", url, check=False)
    assert done.returncode == 2
    assert f"holds no {DB_NAME} to move; its {STATE_FILE} names '{url}': moved" in done.stderr


def test_a_collector_served_on_after_an_unfinished_move_is_told_to_move_again(
    tmp_path: Path, postgres: Postgres, org_keys: OrgKeys
) -> None:
    """Killed after its commit, the move left DATA a single collector's; it served
    on (a token issued). The database holds an earlier copy of its state: the
    rerun says so and how to go on, and a move into an empty database works."""
    data, _, _ = _single(tmp_path, org_keys)
    url = postgres.new_database()
    env = {**os.environ, faults.TESTING: "1", faults.ENV: "state.copied"}
    assert (
        ct("org", "move-state", "--data", str(data), "--to", url, env=env, check=False).returncode
        == -9
    )
    ct("org", "token", "--data", str(data))
    refused = ct("org", "move-state", "--data", str(data), "--to", url, check=False)
    assert refused.returncode == 2
    assert "holds an earlier copy of this collector's state" in refused.stderr
    assert (data / DB_NAME).is_file()
    moved = _move(data, postgres.new_database())
    assert moved["copied"] is True
    assert moved["tokens"] == 5


def test_another_fleets_database_is_refused_and_nothing_changes(
    tmp_path: Path, postgres: Postgres, org_keys: OrgKeys
) -> None:
    data, _, _ = _single(tmp_path, org_keys)
    url = postgres.new_database()
    # Another fleet, with its own witness key, already there.
    issue_tokens(tmp_path / "theirs", url)
    shot = read_devices(data), read_org_ledger(url)
    refused = ct("org", "move-state", "--data", str(data), "--to", url, check=False)
    assert refused.returncode == 2
    assert "witness key" in refused.stderr
    # Same key (as if copied), still another fleet's rows: refused as well.
    for name in (WITNESS_KEY, WITNESS_PUB):
        shutil.copy2(data / name, tmp_path / "theirs" / name)
    url2 = postgres.new_database()
    issue_tokens(tmp_path / "theirs", url2)
    refused = ct("org", "move-state", "--data", str(data), "--to", url2, check=False)
    assert refused.returncode == 2
    assert "already holds a collector's state, and not this one" in refused.stderr
    assert (read_devices(data), read_org_ledger(url)) == shot
    assert (data / DB_NAME).is_file()
    assert not (data / STATE_FILE).exists()
    assert not (data / KEPT_NAME).exists()
    assert read_devices(url2) == {}


def test_a_running_collector_is_not_moved_under_it(
    tmp_path: Path, postgres: Postgres, org_keys: OrgKeys
) -> None:
    data = tmp_path / "data"
    url = postgres.new_database()
    with collector_running(data) as running:
        running.tokens(1)
        refused = ct("org", "move-state", "--data", str(data), "--to", url, check=False)
        assert refused.returncode == 2
        assert "stop it first" in refused.stderr
        assert (data / DB_NAME).is_file()
    assert _move(data, url)["copied"] is True  # nothing was half-done


def test_an_org_ledger_the_witness_key_did_not_sign_is_not_moved(
    tmp_path: Path, postgres: Postgres, org_keys: OrgKeys
) -> None:
    data, _, _ = _single(tmp_path, org_keys)
    url = postgres.new_database()
    saved = tmp_path / "saved"
    saved.mkdir()
    for name in (WITNESS_KEY, WITNESS_PUB):
        (data / name).rename(saved / name)
    refused = ct("org", "move-state", "--data", str(data), "--to", url, check=False)
    assert refused.returncode == 2
    assert f"{WITNESS_KEY} is missing" in refused.stderr
    assert not (data / WITNESS_KEY).exists()  # not made up in its place
    # Another collector's key in its place: its ledger is not that key's.
    with collector_running(tmp_path / "other") as other:
        other.tokens(1)
    for name in (WITNESS_KEY, WITNESS_PUB):
        shutil.copy2(tmp_path / "other" / name, data / name)
    refused = ct("org", "move-state", "--data", str(data), "--to", url, check=False)
    assert refused.returncode == 2
    assert "is not one" in refused.stderr
    assert "nothing was moved" in refused.stderr
    assert (data / DB_NAME).is_file()
    assert not (data / STATE_FILE).exists()
    for name in (WITNESS_KEY, WITNESS_PUB):
        (saved / name).replace(data / name)
    assert _move(data, url)["copied"] is True


@pytest.mark.parametrize(
    ("to", "says"),
    [
        ("postgresql://ct:hunter2-not-for-logs@db.invalid/fleet", "holds a password"),
        ("sqlite:///elsewhere.db", "is not a PostgreSQL state"),
    ],
)
def test_a_target_with_a_password_or_not_postgresql_is_refused(
    tmp_path: Path, to: str, says: str
) -> None:
    refused = ct("org", "move-state", "--data", str(tmp_path), "--to", to, check=False)
    assert refused.returncode == 2
    assert says in refused.stderr
    assert "hunter2" not in refused.stderr + refused.stdout


def test_a_directory_without_a_collector_db_has_nothing_to_move(
    tmp_path: Path, postgres: Postgres
) -> None:
    refused = ct(
        "org", "move-state", "--data", str(tmp_path), "--to", postgres.new_database(), check=False
    )
    assert refused.returncode == 2
    assert f"holds no {DB_NAME} to move" in refused.stderr
