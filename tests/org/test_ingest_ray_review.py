"""Review: where the Ray engine's result differs from the in-process engine's
on the same store, or leaves content behind (a real local Ray cluster)."""

from __future__ import annotations

from pathlib import Path

from cleartrace.org.ingest import ingest
from tests.support.ingest_world import TYPED_TEXT, WINDOW_TITLE, World, at, recorded_session
from tests.support.ray_cluster import RayHead


def _scenario(world: World) -> None:
    """Devices with a withdrawal, a deletion, a pause and a redaction, uploaded twice."""
    a, b, c = world.device(), world.device(), world.device()
    recorded_session(world, a)
    session_b, _, _ = recorded_session(world, b)
    session_c, _, _ = recorded_session(world, c)
    return a, b, c, session_b, session_c


def _later(world: World, a, b, c, session_b: str, session_c: str) -> None:  # type: ignore[no-untyped-def]
    from tests.support.ingest_world import POLICY

    a.act("consent.withdrawn", at(60), categories=["keys"], policy=POLICY)
    world.collector.upload(a, a.bundle())
    b.act("session.deleted", at(60), session=session_b)
    world.collector.upload(b, b.bundle())
    c.act("recording.paused", at(3), until=None)
    c.redact(session_c, at(1.4), at(2), events=4)
    world.collector.upload(c, c.bundle())


def test_ray_on_an_iceberg_table_matches_in_process(world: World, ray_address: str) -> None:
    from tests.org.test_dataset_table import sorted_rows, table_rows

    parts = _scenario(world)
    ray_out = world.root / "on-ray"
    for step in range(2):
        if step:
            _later(world, *parts)
        here = ingest(str(world.source), world.keys, world.out, table="iceberg")
        on_ray = ingest(
            str(world.source), world.keys, ray_out, table="iceberg", engine="ray",
            address=ray_address,
        )  # fmt: skip
        assert here.ok
        assert on_ray.as_dict() == here.as_dict()
        for name in ("events", "actions"):
            assert sorted_rows(table_rows(ray_out, name)) == sorted_rows(
                table_rows(world.out, name)
            )


def test_no_captured_content_in_the_clusters_files(world: World, ray_cluster: RayHead) -> None:
    """The rows cross the object store; nothing of them may stay in Ray's files
    (logs, spilled objects, session state) after the run."""
    recorded_session(world, world.device())
    on_ray = ingest(
        str(world.source), world.keys, world.out, engine="ray", address=ray_cluster.address
    )
    assert on_ray.events_kept > 0
    canaries = [WINDOW_TITLE.encode(), TYPED_TEXT.encode()]
    files = [p for p in ray_cluster.root.rglob("*") if p.is_file() and not p.is_socket()]
    for path in files:
        data = path.read_bytes()
        assert not any(c in data for c in canaries), path


def test_rows_coming_back_are_not_spilled_to_disk(tmp_path: Path, ray_cluster: RayHead) -> None:
    """ADR 0008: the rows come back "with at most two tasks per CPU in flight, so
    they are written before more arrive and do not pile up into spill files".
    Spilled rows are the decrypted content on disk under Ray's temp dir (0777
    session directory), outside the dataset's 0700 tree and its erasure."""
    import importlib.util
    import sys

    from cleartrace.org.keys import generate

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
    org = generate(tmp_path / "keys")
    bench.write_store(tmp_path / "store", org, 3_000_000, 500_000, 2)
    summary = ingest(
        str(tmp_path / "store"), tmp_path / "keys", tmp_path / "out", formats=("parquet",),
        engine="ray", address=ray_cluster.address,
    )  # fmt: skip
    assert summary.ok
    assert summary.events_kept > 0
    spilled = [
        line
        for log in ray_cluster.root.rglob("raylet.out")
        for line in log.read_text(errors="replace").splitlines()
        if ":info_message:Spilled" in line and " 0 objects" not in line
    ]
    assert spilled == []


def test_ray_matches_in_process_when_a_device_vanishes(world: World, ray_address: str) -> None:
    gone, kept = world.device(), world.device()
    _, name, _ = recorded_session(world, gone)
    recorded_session(world, kept)
    ray_out = world.root / "on-ray"
    ingest(str(world.source), world.keys, world.out)
    ingest(str(world.source), world.keys, ray_out, engine="ray", address=ray_address)
    (world.source / "bundles" / f"{name}.ctb").unlink()
    (world.source / "heads" / f"{gone.hex}.json").unlink()
    here = ingest(str(world.source), world.keys, world.out)
    on_ray = ingest(str(world.source), world.keys, ray_out, engine="ray", address=ray_address)
    assert here.devices_rejected == {gone.fingerprint: "bundles-missing"}
    assert on_ray.as_dict() == here.as_dict()
