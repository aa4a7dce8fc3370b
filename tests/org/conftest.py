"""Fixtures of the org tests: organisation keys, and the ingest world with its witness.

The collector itself runs through tests.support.org_process; `org` (the root
conftest) is a whole organisation with its collector running, `org_keys` here
is only the keys.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cleartrace.org.keys import OrgKeys, generate, load_private
from tests.support.head_witness import Witness
from tests.support.ingest_world import World
from tests.support.postgres import Postgres, postgres_cluster
from tests.support.ray_cluster import RayHead, ray_head


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One throwaway PostgreSQL cluster for the whole session (tests/support/postgres.py)."""
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def collector_state(request: pytest.FixtureRequest) -> str | None:
    """The `--state` of a module's collector, once per backend: None for the
    embedded DATA/collector.db, else a fresh database on the session's cluster."""
    if request.param == "sqlite":
        return None
    cluster: Postgres = request.getfixturevalue("postgres")
    return cluster.new_database()


@pytest.fixture(scope="session")
def org_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An organisation key directory, as `cleartrace org keygen` writes it."""
    keys = tmp_path_factory.mktemp("org") / "keys"
    generate(keys)
    return keys


@pytest.fixture(scope="session")
def org_keys(org_dir: Path) -> OrgKeys:
    """The keys in `org_dir`, private halves included."""
    return load_private(org_dir)


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayHead]:
    """A real local Ray cluster (2 CPUs, on 127.0.0.1) for the whole session,
    its files under a short temporary directory (its sockets' paths must fit
    AF_UNIX's 107 bytes, which an xdist worker's tmp path would not), this
    process set to join it (its token); stopped at its end whatever happened."""
    with (
        tempfile.TemporaryDirectory(prefix="ct-ray-") as root,
        ray_head(Path(root)) as head,
        head.driver(),
    ):
        yield head


@pytest.fixture
def ray_address(ray_cluster: RayHead) -> str:
    """The address of `ray_cluster`, for `--address`."""
    return ray_cluster.address


@pytest.fixture(scope="module")
def world_org(tmp_path_factory: pytest.TempPathFactory) -> tuple[OrgKeys, Path]:
    """Organisation keys for the ingest worlds of one test module, and their directory."""
    keys = tmp_path_factory.mktemp("org") / "keys"
    return generate(keys), keys


@pytest.fixture
def world(tmp_path: Path, world_org: tuple[OrgKeys, Path]) -> Iterator[World]:
    """A collector's store, a dataset directory, and devices made on demand."""
    w = World(tmp_path, *world_org)
    yield w
    for device in w.devices:
        device.ledger.close()


@pytest.fixture
def witness(world: World) -> Iterator[Witness]:
    """The collector's head path (registry and witness key) over `world`'s store."""
    made = Witness(world)
    yield made
    made.registry.close()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a disk that fills up. Needs root (mount); skipped otherwise."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
