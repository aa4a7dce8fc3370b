"""No captured content in a Ray cluster's files: what a task returns is sealed
to a key pair the driver makes for the run, so the object store, and any spill
of it to Ray's temp dir, holds only ciphertext (ADR 0008)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pyarrow.parquet as pq
import pytest

from cleartrace.org.ingest import ingest
from cleartrace.org.keys import generate
from cleartrace.org.ray_results import ResultKey
from tests.support.ingest_world import TYPED_TEXT, WINDOW_TITLE, World, recorded_session
from tests.support.ray_cluster import RayHead, watch_files

#: The window title every focus event of benchmarks/ingest.py's stores carries.
BENCH_TITLE = b"notes - gedit"


def _bench() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "ingest.py"
    argv, sys.argv = sys.argv, [str(path)]
    try:
        spec = importlib.util.spec_from_file_location("bench_ingest", path)
        assert spec is not None
        assert spec.loader is not None
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
    finally:
        sys.argv = argv
    return bench


def test_no_captured_content_in_the_clusters_files(world: World, ray_cluster: RayHead) -> None:
    """The rows cross the object store; nothing of them may stay in Ray's files
    (logs, spilled objects, session state) after the run."""
    recorded_session(world, world.device())
    canaries = [WINDOW_TITLE.encode(), TYPED_TEXT.encode()]
    with watch_files(ray_cluster.root, canaries) as watch:
        on_ray = ingest(
            str(world.source), world.keys, world.out, engine="ray", address=ray_cluster.address
        )
    assert on_ray.events_kept > 0
    assert watch.seen
    assert not watch.hits


def test_rows_spilled_to_rays_temp_dir_are_ciphertext(tmp_path: Path, ray_cluster: RayHead) -> None:
    """A store whose rows outgrow the test cluster's 80 MB object store, so Ray
    may spill results to its temp dir (a 0777 session directory, outside the
    dataset's tree and its erasure): whatever it wrote there, spilled or not,
    holds no plaintext of them. The files are read while the run goes on, as
    Ray removes a spilled object once the driver has taken its result."""
    org = generate(tmp_path / "keys")
    _bench().write_store(tmp_path / "store", org, 3_000_000, 500_000, 2)
    with watch_files(ray_cluster.root, [BENCH_TITLE]) as watch:
        summary = ingest(
            str(tmp_path / "store"), tmp_path / "keys", tmp_path / "out", formats=("parquet",),
            engine="ray", address=ray_cluster.address,
        )  # fmt: skip
    assert summary.ok
    assert summary.events_kept > 0
    titles = {
        title
        for part in (tmp_path / "out" / "events").rglob("*.parquet")
        for title in pq.read_table(part, columns=["title"]).column("title").to_pylist()
    }
    assert BENCH_TITLE.decode() in titles  # the canary is in the rows
    assert watch.scans > 1
    assert not watch.hits


def test_a_sealed_result_opens_only_with_its_runs_key_and_for_its_task() -> None:
    """What a task returns is HPKE ciphertext to the run's public key, bound to
    the task it answers: another run's key or another task's label does not open it."""
    run, other = ResultKey.new(), ResultKey.new()
    result = {"title": WINDOW_TITLE, "rows": [1, 2, 3]}
    sealed = run.public.seal(result, "rows/bundle-a")
    assert WINDOW_TITLE.encode() not in sealed
    assert run.open(sealed, "rows/bundle-a") == result
    with pytest.raises(ValueError, match="does not open"):
        other.open(sealed, "rows/bundle-a")
    with pytest.raises(ValueError, match="does not open"):
        run.open(sealed, "rows/bundle-b")
