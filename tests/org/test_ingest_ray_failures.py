"""What ingest does when it cannot read its store, on either engine: a store,
a mount or a key the process (or a Ray worker) cannot read stops the run with
an error naming where and the fix, and the dataset stays as it was; only a
bundle whose bytes were read and failed its checks is a rejection. The Ray
workers read the store the driver listed, however `--from` was written; a
worker lost mid-run is retried, a cluster lost stops the run clearly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from cleartrace import faults
from cleartrace.errors import ClusterLost, KeyStorageError, StoreError
from cleartrace.org.ingest import ingest
from cleartrace.org.ingest_ray import Workers, open_task
from cleartrace.org.org_ledger import default_path
from cleartrace.org.ray_results import ResultKey
from tests.support.cli import ct
from tests.support.ingest_world import World, recorded_session
from tests.support.ray_cluster import RayHead


def test_ray_reads_a_relative_store_path_as_the_in_process_engine_does(
    world: World, ray_address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`org ingest --from store --engine ray --address A`, run from the directory
    holding `store`: the workers must read the same store the driver listed."""
    recorded_session(world, world.device())
    monkeypatch.chdir(world.root)
    relative = os.path.relpath(world.source, world.root)
    here = ingest(relative, world.keys, world.out)
    assert here.ok
    assert here.events_kept > 0
    rows = world.rows()
    # The same store again, now on Ray, into the same dataset: nothing changed.
    on_ray = ingest(relative, world.keys, world.out, engine="ray", address=ray_address)
    assert len(world.rows()) == len(rows)  # not emptied: each "unreadable" bundle drops its rows
    assert [r.reason for r in on_ray.rejected] == []
    assert on_ray.bundles_unchanged == here.bundles_read


def _unmount(world: World, name: str) -> None:
    """The bundle `name` as a link into a mount that is not there (a missing
    mount, a path only another node has): listed, but its bytes cannot be read."""
    path = world.source / "bundles" / f"{name}.ctb"
    path.unlink()
    path.symlink_to(world.root / "not-mounted" / path.name)


def _sorted(rows: list[dict[str, Any]]) -> list[str]:
    """Rows in a total order (two devices' rows may share a time)."""
    return sorted(repr(sorted(row.items())) for row in rows)


@pytest.mark.parametrize("engine", ["inprocess", "ray"])
def test_a_bundle_that_cannot_be_read_stops_the_run_and_keeps_the_dataset(
    world: World, engine: str, request: pytest.FixtureRequest
) -> None:
    """A read error is the environment's, not the bundle's: no rejection, no
    row removed, no manifest or org-ledger record changed."""
    address = request.getfixturevalue("ray_address") if engine == "ray" else None
    recorded_session(world, world.device())
    _, name, _ = recorded_session(world, world.device())
    assert world.ingest().ok
    rows, manifest = (
        _sorted(world.rows()),
        (world.out / "_cleartrace" / "manifest.json").read_bytes(),
    )
    ledger = default_path(world.out).read_bytes()
    _unmount(world, name)
    where = "on Ray node .* " if engine == "ray" else ""
    with pytest.raises(StoreError, match=f"{where}cannot read bundle {name[:16]}") as caught:
        world.ingest(engine=engine, address=address)
    message = str(caught.value)
    assert "nothing in the dataset was changed" in message
    assert "run ingest again" in message
    assert _sorted(world.rows()) == rows
    assert (world.out / "_cleartrace" / "manifest.json").read_bytes() == manifest
    assert default_path(world.out).read_bytes() == ledger


def test_a_worker_without_the_key_directory_names_its_node_and_the_fix(
    world: World, tmp_path: Path
) -> None:
    """KEYS is a path every node must have: a task run where it is missing
    (here, in this process) says which node lacks it, not that a bundle is bad."""
    _, name, _ = recorded_session(world, world.device())
    workers = Workers(str(world.source), None, str(tmp_path / "not-mounted" / "keys"))
    with pytest.raises(KeyStorageError, match=r"on Ray node .*: .*every node needs KEYS"):
        open_task(workers, ResultKey.new().public, name, (frozenset(), frozenset()))


def _on_workers(monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    """The run's Ray workers killed (SIGKILL) at the fault point `point`: a
    worker or its node lost mid-run (cleartrace.faults, passed to the job)."""
    monkeypatch.setenv(faults.TESTING, "1")
    monkeypatch.setenv(faults.ENV, point)


def test_a_worker_lost_mid_run_is_retried_and_the_run_completes(
    world: World, ray_address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each worker dies making its second bundle's rows: the tasks only read,
    so they run again elsewhere and the result is the in-process one."""
    for _ in range(4):
        recorded_session(world, world.device())
    here = world.ingest()
    _on_workers(monkeypatch, "ray.rows@2")
    on_ray = ingest(
        str(world.source), world.keys, world.root / "on-ray", engine="ray", address=ray_address
    )
    assert on_ray.as_dict() == here.as_dict()
    assert here.bundles_read == 4


def test_a_cluster_lost_mid_run_stops_it_with_a_clear_error_and_keeps_the_rows(
    world: World, ray_address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every worker dies at its first rows: beyond the retries the run stops
    with ClusterLost (exit 2), not a hang or Ray's own exit; no row is removed
    and the run is not recorded."""
    recorded_session(world, world.device())
    assert world.ingest().ok
    rows, ledger = _sorted(world.rows()), default_path(world.out).read_bytes()
    recorded_session(world, world.device())  # new: its rows are made on Ray
    _on_workers(monkeypatch, "ray.rows")
    with pytest.raises(ClusterLost, match="Ray cluster was lost during ingest") as caught:
        world.ingest(engine="ray", address=ray_address)
    assert caught.value.exit_code == 2
    assert "run ingest again" in str(caught.value)
    assert _sorted(world.rows()) == rows
    assert default_path(world.out).read_bytes() == ledger


@pytest.mark.parametrize("given", ["another", "none"])
def test_a_refused_authentication_token_is_named_as_such(
    world: World, ray_cluster: RayHead, tmp_path: Path, given: str
) -> None:
    """The cluster uses token authentication: `org ingest` run without the
    token, or with another, says so and how to give it, not that it cannot
    reach the cluster (a process reads its token once: a command of its own)."""
    recorded_session(world, world.device())
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    if given == "another":
        other = tmp_path / "other-token"
        other.write_text("0" * 64)
        other.chmod(0o600)
        env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(other)}
    argv = ["org", "ingest", "--from", str(world.source), "--keys", str(world.keys)]
    argv += ["--out", str(world.out), "--engine", "ray", "--address", ray_cluster.address]
    done = ct(*argv, "--quiet", env=env, check=False)
    assert done.returncode == 2, done.stderr
    assert f"the Ray cluster at {ray_cluster.address} refused this process's token" in done.stderr
    assert "RAY_AUTH_TOKEN_PATH" in done.stderr
    assert "cannot reach" not in done.stderr
