"""Several collector processes sharing one PostgreSQL state, raced against each other.

Three real `cleartrace org serve` processes on 127.0.0.1, each with its own
data directory (and a copy of the one witness key), one PostgreSQL database
and one bundle store. Every bundle is sent to all three at the same moment,
and every token of a second batch is tried by three devices at once, one per
process: only locks and transactions that hold across processes keep each
bundle stored once, each head where its device's ledger ended, each head
file the registry's, and each token used once. A lock inside one process
lets the second and third copies of a bundle past the head check while the
first is being stored, and they are refused as a rewritten ledger.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from cleartrace.org.keys import OrgKeys
from cleartrace.org.org_ledger import COLLECTOR, export_lines, verify_chain
from cleartrace.org.state import open_state
from cleartrace.org.witness import WITNESS_KEY, WITNESS_PUB, load_public, verify_head
from tests.support.cli import ct
from tests.support.org_device import Device
from tests.support.org_process import RunningCollector, collector_running, leftovers
from tests.support.postgres import Postgres

PROCESSES = 3
DEVICES = 12
UPLOADS = 3
RACED_TOKENS = 8


@contextmanager
def fleet_of(
    tmp_path: Path, postgres: Postgres, processes: int, *args: str
) -> Iterator[list[RunningCollector]]:
    """`processes` collectors on one fresh database and one store directory."""
    state = postgres.new_database()
    first = tmp_path / "data0"
    registry = open_state(first, state)  # makes the tables and, with the first act, the key
    try:
        registry.issue_tokens(1)
    finally:
        registry.close()
    store = tmp_path / "store"
    store.mkdir(mode=0o700)
    with ExitStack() as stack:
        running = []
        for i in range(processes):
            data = tmp_path / f"data{i}"
            if i:
                data.mkdir(mode=0o700)
                for name in (WITNESS_KEY, WITNESS_PUB):
                    shutil.copy2(first / name, data / name)
            running.append(
                stack.enter_context(
                    collector_running(
                        data,
                        "--store",
                        str(store),
                        "--enroll-rate",
                        "1000/m",
                        "--enroll-rate-total",
                        "1000/m",
                        *args,
                        state=state,
                    )
                )
            )
        yield running


@pytest.fixture
def fleet(tmp_path: Path, postgres: Postgres) -> Iterator[list[RunningCollector]]:
    """Three collectors on one fresh database and one store directory."""
    with fleet_of(tmp_path, postgres, PROCESSES) as running:
        yield running


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run `calls` on threads released together; their results in order."""
    gate = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        gate.wait(timeout=60)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def one_device(
    fleet: list[RunningCollector], org_keys: OrgKeys, token: str, i: int
) -> tuple[Device, list[str]]:
    """Enrol through one process, then send each bundle to every process at once;
    the device and its bundles' names."""
    dev = Device(org_keys.bundle_public)
    names = []
    assert dev.enroll(fleet[i % PROCESSES].url, token).status_code == 201
    for _ in range(UPLOADS):
        name, raw, head = dev.bundle(events=100, records=2)
        answers = at_once([partial(dev.put, c.url, name, raw) for c in fleet])
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] * (PROCESSES - 1) + [201], [a.text for a in answers]
        for a in answers:
            assert a.json()["head"] == {"seq": head[0], "hash": head[1]}
            assert a.json()["stored"] is (a.status_code == 201)
        dev.witnessed = head
        names.append(name)
    return dev, names


def test_processes_sharing_postgresql_store_each_bundle_once_and_use_each_token_once(
    fleet: list[RunningCollector], org_keys: OrgKeys, tmp_path: Path
) -> None:
    tokens = fleet[0].tokens(DEVICES)
    with ThreadPoolExecutor(DEVICES) as pool:
        uploaded = list(
            pool.map(lambda it: one_device(fleet, org_keys, it[1], it[0]), enumerate(tokens))
        )
    devices = [dev for dev, _ in uploaded]

    raced = fleet[1].tokens(RACED_TOKENS)
    winners = []
    for token in raced:
        rivals = [Device(org_keys.bundle_public) for _ in fleet]
        answers = at_once(
            [partial(d.enroll, c.url, token) for d, c in zip(rivals, fleet, strict=True)]
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [201] + [401] * (PROCESSES - 1)
        assert {a.json()["reason"] for a in answers if a.status_code == 401} == {"bad-token"}
        winners += [d.device for d, a in zip(rivals, answers, strict=True) if a.status_code == 201]

    registry = open_state(fleet[0].data, fleet[0].state)
    try:
        known = {d.device: d for d in registry.devices()}
        bundle_count = registry.bundle_count()
        ledger = registry.org_ledger()
    finally:
        registry.close()
    for running in fleet:
        assert running.stop() == 0
        assert "Traceback" not in running.stderr()

    names = [n for _, sent in uploaded for n in sent]
    assert len(set(names)) == bundle_count == DEVICES * UPLOADS
    store = tmp_path / "store"
    assert {p.name.removesuffix(".ctb") for p in (store / "bundles").iterdir()} == set(names)
    assert leftovers(store) == []
    assert set(known) == {d.device for d in devices} | set(winners)

    witness = load_public(fleet[0].data)
    counters = set()
    for dev, sent in uploaded:
        row = known[dev.device]
        assert (row.head.seq, row.head.hash) == dev.witnessed
        assert row.head_bundle == sent[-1]
        head_file = json.loads((store / "heads" / f"{dev.hex}.json").read_text())
        verify_head(head_file, witness)
        assert (head_file["seq"], head_file["hash"]) == dev.witnessed
        assert head_file["counter"] == row.head_counter
        counters.add(row.head_counter)
    assert len(counters) == DEVICES  # every accepted head took a counter of its own

    verify_chain(export_lines(COLLECTOR, witness, ledger), witness)
    admitted = [r["device"] for r in ledger if r["kind"] == "device.admitted"]
    assert sorted(admitted) == sorted(known)


def test_upload_and_enrolment_rates_are_counted_across_the_fleet(
    tmp_path: Path, postgres: Postgres, org_keys: OrgKeys
) -> None:
    limits = ("--rate", "2/h", "--enroll-rate", "2/h")
    with fleet_of(tmp_path, postgres, 2, *limits) as (first, second):
        tokens = first.tokens(3)
        dev = Device(org_keys.bundle_public)
        assert dev.enroll(first.url, tokens[0]).status_code == 201
        assert Device(org_keys.bundle_public).enroll(second.url, tokens[1]).status_code == 201
        assert dev.upload(first.url)[0].status_code == 201
        assert dev.upload(second.url)[0].status_code == 201
        for running in (first, second):
            refused = Device(org_keys.bundle_public).enroll(running.url, tokens[2])
            assert refused.status_code == 429, refused.text
            assert refused.json()["reason"] == "rate-limited"
            refused, _, _ = dev.upload(running.url)
            assert refused.status_code == 429, refused.text
            assert refused.json()["reason"] == "rate-limited"
            assert 1 <= int(refused.headers["Retry-After"]) <= 3600


def test_a_process_with_another_witness_key_is_refused_at_start(
    tmp_path: Path, postgres: Postgres
) -> None:
    state = postgres.new_database()
    first = open_state(tmp_path / "first", state)
    try:
        first.issue_tokens(1)  # the fleet's key signs the org ledger from now on
    finally:
        first.close()
    out = ct(
        "org", "serve", "--data", str(tmp_path / "other"), "--port", "0", "--state", state,
        check=False,
    )  # fmt: skip
    assert out.returncode == 2
    assert "witness.key" in out.stderr
    assert "copy" in out.stderr
    tokens = ct("org", "token", "--data", str(tmp_path / "other"), "--state", state, check=False)
    assert tokens.returncode == 2
    assert "witness.key" in tokens.stderr
