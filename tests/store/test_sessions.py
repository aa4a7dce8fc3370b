from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cleartrace.errors import DiskFull, StoreCorrupt, UnknownSession, UsageError, WrongKey
from cleartrace.events import Kind
from cleartrace.paths import Paths
from cleartrace.store import compaction
from cleartrace.store.db import connect
from cleartrace.store.keys import Keys
from cleartrace.store.sessions import Store
from tests.support.canaries import CANARY, assert_absent, canary_forms, store_files
from tests.support.sessions import typed


def test_events_round_trip_and_compaction_makes_few_chunks(store: Store) -> None:
    handle = store.begin_session(time.time_ns(), 0)
    batches = [typed("hello", i * 10**9) for i in range(30)]
    batches.append([(40 * 10**9, int(Kind.FOCUS), 0, 0, 0, 0, ("Gedit", "a title"))])
    for batch in batches:
        store.append_chunk(handle, batch)
    assert store.chunk_count(handle.id) == 31
    store.end_session(handle, time.time_ns())
    assert store.chunk_count(handle.id) == 1
    events = store.read_events(handle.id)
    assert [(e.t_ns, int(e.kind), e.a) for e in events] == [
        (ev[0], ev[1], ev[2]) for batch in batches for ev in batch
    ]
    (info,) = store.list_sessions()
    assert info.state == "pending"
    assert info.counts == {"keys": 300, "app_focus": 1}
    assert info.applications == ["Gedit"]


@pytest.mark.parametrize("flushes", [1, 4])
def test_recovery_recounts_a_sessions_counts_from_its_chunks(
    store: Store, private_home: Paths, flushes: int
) -> None:
    handle = store.begin_session(10**18, 0)
    batch = [
        *typed("ab", 10**9),
        (2 * 10**9, int(Kind.FOCUS), 0, 0, 0, 0, ("Gedit", "t")),
        (3 * 10**9, int(Kind.MOVE), 5, 5, 0, 0, None),
        (3 * 10**9, int(Kind.SCREEN), 1, 1920, 1080, 100, None),
    ]
    for i in range(flushes):
        store.append_chunk(handle, [(t + i * 10**10, *rest) for t, *rest in batch])
    # Counts that do not match the chunks (damaged, or left by a version that
    # wrote them apart): what the chunks hold is what counts.
    conn = connect(private_home.db)
    conn.execute("UPDATE sessions SET counts='{}'")
    conn.close()
    store._conn.execute(
        "UPDATE meta SET value='another-boot:123' WHERE key=?", ("writer:" + handle.id,)
    )
    assert store.recover() == [handle.id]
    info = store.session(handle.id)
    assert info.counts == {"keys": 4 * flushes, "app_focus": flushes, "mouse_move": flushes}
    assert info.applications == ["Gedit"]


def test_prefix_lookup(store: Store) -> None:
    handle = store.begin_session(time.time_ns(), 0)
    assert store.session(handle.id[:6]).id == handle.id
    with pytest.raises(UnknownSession, match="sessions list"):
        store.session("0000zz")
    others = [store.begin_session(time.time_ns(), 0) for _ in range(40)]
    first_digits = [o.id[0] for o in others]
    shared = max(set(first_digits), key=first_digits.count)  # 40 ids over 16 digits share one
    with pytest.raises(UsageError, match="several"):
        store.session(shared)


def test_wrong_master_key_is_refused_naming_the_file(private_home: Paths, keys: Keys) -> None:
    Store.open(private_home, keys).close()
    wrong = Keys(os.urandom(32), keys.device, keys.backend, keys.location)
    with pytest.raises(WrongKey, match=str(private_home.db)):
        Store.open(private_home, wrong)


def test_corrupt_database_is_reported_and_left_untouched(private_home: Paths, keys: Keys) -> None:
    Store.open(private_home, keys).close()
    for side in ("-wal", "-shm"):
        Path(f"{private_home.db}{side}").unlink(missing_ok=True)
    garbage = b"this is not a database" * 300
    private_home.db.write_bytes(garbage)
    with pytest.raises(StoreCorrupt, match=f"{private_home.db} is damaged"):
        Store.open(private_home, keys)
    assert private_home.db.read_bytes() == garbage


def test_full_disk_raises_and_keeps_what_was_stored(store: Store, private_home: Paths) -> None:
    handle = store.begin_session(time.time_ns(), 0)
    store.append_chunk(handle, typed("kept"))
    conn: sqlite3.Connection = store._conn  # the quota is a property of this connection
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count={pages}")
    big = [
        (i * 1000, int(Kind.MOVE), (i * 7919) % 100003, (i * 104729) % 99991, 0, 0, None)
        for i in range(200_000)
    ]
    with pytest.raises(DiskFull, match=str(private_home.db)):
        store.append_chunk(handle, big)
    conn.execute("PRAGMA max_page_count=1073741823")
    assert [e.a for e in store.read_events(handle.id)] == [ev[2] for ev in typed("kept")]
    store.append_chunk(handle, typed("more"))
    assert len(store.read_events(handle.id)) == 16


def test_nothing_is_plaintext_and_delete_leaves_no_trace(store: Store, private_home: Paths) -> None:
    handle = store.begin_session(time.time_ns(), 0)
    store.append_chunk(handle, [(0, int(Kind.FOCUS), 0, 0, 0, 0, ("Xterm", CANARY))])
    store.append_chunk(handle, typed(CANARY, 10**9))
    assert_absent([*canary_forms(), handle.key], private_home)  # while recording (WAL)
    store.end_session(handle, time.time_ns())
    assert_absent([*canary_forms(), handle.key], private_home)  # closed and checkpointed
    blobs = [b for (b,) in store._conn.execute("SELECT blob FROM chunks")]
    (wrapped,) = store._conn.execute("SELECT wrapped_key FROM sessions").fetchone()
    assert any(wrapped in data for data in store_files(private_home).values())

    store.delete_session(handle.id)

    with pytest.raises(UnknownSession):
        store.session(handle.id)
    assert_absent([*canary_forms(), wrapped, *(blob[20:60] for blob in blobs)], private_home)
    wal = Path(f"{private_home.db}-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def test_other_sessions_survive_a_delete(store: Store) -> None:
    kept, gone = (store.begin_session(time.time_ns(), 0) for _ in range(2))
    for handle in (kept, gone):
        store.append_chunk(handle, typed("abc"))
        store.end_session(handle, time.time_ns())
    store.delete_session(gone.id)
    assert [s.id for s in store.list_sessions()] == [kept.id]
    assert len(store.read_events(kept.id)) == 6


def test_compaction_splits_long_sessions_and_keeps_every_event(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compaction, "COMPACT_EVENTS", 25)
    handle = store.begin_session(time.time_ns(), 0)
    batches = [typed("abcdefg", i * 10**9) for i in range(10)]  # 10 chunks of 14 events
    for batch in batches:
        store.append_chunk(handle, batch)
    store.end_session(handle, time.time_ns())
    indices = [i for (i,) in store._conn.execute("SELECT idx FROM chunks ORDER BY idx")]
    # 140 events in 25s, above the old indices, with room for redactions between them
    assert indices == [10 + 1024 * k for k in range(6)]
    got = [(e.t_ns, int(e.kind), e.a) for e in store.read_events(handle.id)]
    assert got == [(ev[0] // 1000 * 1000, ev[1], ev[2]) for batch in batches for ev in batch]


def test_a_live_writers_session_is_neither_recovered_nor_deleted(
    private_home: Paths, keys: Keys, store: Store
) -> None:
    handle = store.begin_session(time.time_ns(), time.monotonic_ns())
    store.append_chunk(handle, typed("ab"))
    store.append_chunk(handle, typed("cd"))
    other = Store.open(private_home, keys)  # recover() runs here
    try:
        assert other.recover() == []
        assert other.session(handle.id).state == "recording"
        assert other.chunk_count(handle.id) == 2
        with pytest.raises(UsageError, match=f"{handle.id[:12]} is still being recorded"):
            other.delete_session(handle.id)
    finally:
        other.close()
    store.append_chunk(handle, typed("ef"))  # the writer carries on undisturbed
    store.end_session(handle, time.time_ns())
    assert len(store.read_events(handle.id)) == 12


def test_a_reused_pid_does_not_keep_a_crashed_session_open(
    private_home: Paths, keys: Keys, store: Store
) -> None:
    handle = store.begin_session(10**18, 5 * 10**9)
    store.append_chunk(handle, typed("ab", 6 * 10**9))
    # As after a reboot: the pid now belongs to a live process, but not the writer.
    store._conn.execute(
        "UPDATE meta SET value='another-boot:123' WHERE key=?", ("writer:" + handle.id,)
    )
    assert store.recover() == [handle.id]
    info = store.session(handle.id)
    assert info.state == "pending"
    assert info.ended_ns == 10**18 + 10**9 + 3_000_000  # anchor + last event - anchor_mono


def test_kill_9_of_a_writer_loses_nothing_committed(private_home: Paths, keys: Keys) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from cleartrace.paths import Paths
        from cleartrace.store.keys import load_keys
        from cleartrace.store.sessions import Store
        paths = Paths.from_env()
        store = Store.open(paths, load_keys(paths, create=False))
        h = store.begin_session(time.time_ns(), time.monotonic_ns())
        i = 0
        while True:
            store.append_chunk(h, [(time.monotonic_ns(), 1, 97 + i % 26, 0, 0, 0, None)])
            print(i, flush=True)
            i += 1
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    last = -1
    while last < 50:
        last = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    store = Store.open(private_home, keys)
    try:
        (info,) = store.list_sessions()
        assert info.state == "pending"
        assert info.ended_ns is not None
        events = store.read_events(info.id)
        assert len(events) >= last + 1  # every chunk reported as committed is there
        assert store.chunk_count(info.id) == 1  # recovery compacted it
        assert info.counts == {"keys": len(events)}  # and counted every event
    finally:
        store.close()


def test_a_session_an_older_version_left_half_deleted_is_purged_on_open(
    store: Store, private_home: Paths, keys: Keys
) -> None:
    handle = store.begin_session(time.time_ns(), 0)
    store.append_chunk(handle, [(1, int(Kind.KEY_DOWN), 0x61, 0, 0, 0, None)])
    store.end_session(handle, time.time_ns())
    # What the first of two commits of the deletion before the 'deleted' state
    # left when the process died: no key, the rest still there.
    store_conn = connect(private_home.db)
    store_conn.execute("UPDATE sessions SET wrapped_key=NULL, summary=NULL, state='approved'")
    store_conn.close()
    again = Store.open(private_home, keys)
    try:
        assert again.list_sessions() == []
        conn = connect(private_home.db)
        assert conn.execute("SELECT count(*) FROM chunks").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
        conn.close()
    finally:
        again.close()
