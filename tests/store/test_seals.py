"""The cap on random nonces per session key: a new key before the cap, and the
chunks sealed before and after it all open, even across a crash."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

from cleartrace.events import Kind
from cleartrace.paths import Paths
from cleartrace.store.keys import Keys, load_keys
from cleartrace.store.seals import MAX_SEALS, seals_used
from cleartrace.store.sessions import Store

LIMIT = 6


def batch(i: int) -> list[tuple[int, int, int, int, int, int, tuple[str, None] | None]]:
    """One key, and every third batch a new application first (a summary seal).
    Times in whole microseconds, the codec's resolution."""
    focus = (i * 10_000, int(Kind.FOCUS), 0, 0, 0, 0, (f"app{i}", None))
    key = (i * 10_000 + 1_000, int(Kind.KEY_DOWN), 97 + i % 26, 0, 0, 0, None)
    return [focus, key] if i % 3 == 0 else [key]


def wrapped(paths: Paths, session_id: str) -> bytes:
    with sqlite3.connect(paths.db) as conn:
        (blob,) = conn.execute(
            "SELECT wrapped_key FROM sessions WHERE id=?", (session_id,)
        ).fetchone()
    return bytes(blob)


def test_the_cap_is_nists_for_random_96_bit_nonces() -> None:
    assert MAX_SEALS == 2**32


def test_a_session_key_gets_a_new_key_before_it_seals_more_than_the_cap(
    private_home: Paths, keys: Keys
) -> None:
    store = Store.open(private_home, keys, seal_limit=LIMIT)
    try:
        handle = store.begin_session(time.time_ns(), 0)
        expected = []
        wrapped_seen = {wrapped(private_home, handle.id)}
        for i in range(40):
            events = batch(i)
            store.append_chunk(handle, events)
            expected += [e[0] for e in events]
            assert seals_used(store._conn, handle.id) <= LIMIT
            wrapped_seen.add(wrapped(private_home, handle.id))
        assert len(wrapped_seen) >= 5  # the key was replaced again and again
        assert [e.t_ns for e in store.read_events(handle.id)] == expected
        store.end_session(handle, time.time_ns())
        assert seals_used(store._conn, handle.id) <= LIMIT
        assert [e.t_ns for e in store.read_events(handle.id)] == expected
        (info,) = store.list_sessions()
        assert len(info.applications) == 14
    finally:
        store.close()
    # and with the ordinary limit, a later process reads it all the same
    again = Store.open(private_home, load_keys(private_home, create=False))
    try:
        assert [e.t_ns for e in again.read_events(handle.id)] == expected
    finally:
        again.close()


_APPEND_UNTIL_ROTATION = textwrap.dedent(
    """
    import sys, time
    from cleartrace.events import Kind
    from cleartrace.paths import Paths
    from cleartrace.store.keys import load_keys
    from cleartrace.store.sessions import Store

    paths = Paths.from_env()
    store = Store.open(paths, load_keys(paths, create=False), seal_limit=int(sys.argv[1]))
    handle = store.begin_session(time.time_ns(), 0)
    print(handle.id, flush=True)

    def stop_inside_rotation(sql):
        if sql.startswith("UPDATE sessions SET wrapped_key"):
            print("rotating", flush=True)
            time.sleep(120)

    store._conn.set_trace_callback(stop_inside_rotation)
    for i in range(1000):
        store.append_chunk(handle, [(i * 1000, int(Kind.KEY_DOWN), 97, 0, 0, 0, None)])
        print(i, flush=True)
    """
)


def test_sigkill_inside_a_session_key_rotation_loses_no_stored_chunk(
    private_home: Paths, keys: Keys
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _APPEND_UNTIL_ROTATION, str(LIMIT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    appended = []
    try:
        assert proc.stdout is not None
        session_id = proc.stdout.readline().strip()
        before = wrapped(private_home, session_id)
        while (line := proc.stdout.readline().strip()) != "rotating":
            assert line, proc.stderr.read() if proc.stderr else ""
            appended.append(int(line))
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert appended == list(range(LIMIT - 1))
    assert wrapped(private_home, session_id) == before  # the rotation rolled back
    store = Store.open(private_home, load_keys(private_home, create=False))  # recovers it
    try:
        assert [e.t_ns // 1000 for e in store.read_events(session_id)] == appended
        assert store.session(session_id).state == "pending"
    finally:
        store.close()


def test_every_seal_is_counted_whatever_path_writes_it(private_home: Paths, keys: Keys) -> None:
    store = Store.open(private_home, keys)
    try:
        handle = store.begin_session(time.time_ns(), 0)
        for i in range(3):
            store.append_chunk(handle, batch(i))  # 3 chunks, 1 summary (batch 0)
        assert seals_used(store._conn, handle.id) == 4
        store.end_session(handle, time.time_ns())  # compacted into 1 chunk
        assert seals_used(store._conn, handle.id) == 5
        store.redact(handle.id, [2], method="span")  # 1 chunk re-sealed
        assert seals_used(store._conn, handle.id) == 6
        store.delete_session(handle.id)
        assert seals_used(store._conn, handle.id) == 0  # the counter goes with the session
    finally:
        store.close()


def test_a_redaction_counts_against_the_cap_and_gets_a_new_key_before_passing_it(
    private_home: Paths, keys: Keys
) -> None:
    store = Store.open(private_home, keys, seal_limit=LIMIT)
    try:
        handle = store.begin_session(time.time_ns(), 0)
        for i in range(3):
            store.append_chunk(handle, batch(i))
        store.end_session(handle, time.time_ns())
        before = [e.t_ns for e in store.read_events(handle.id)]
        old_wrapped = wrapped(private_home, handle.id)
        with sqlite3.connect(private_home.db) as conn:  # the key has sealed all it may
            conn.execute("UPDATE meta SET value=? WHERE key=?", (LIMIT, "seals:" + handle.id))
        conn.close()
        store.redact(handle.id, [1], method="span")
        assert seals_used(store._conn, handle.id) <= LIMIT
        assert wrapped(private_home, handle.id) != old_wrapped
        assert [e.t_ns for e in store.read_events(handle.id)] == before[:1] + before[2:]
    finally:
        store.close()


def test_a_session_older_than_the_counter_counts_its_chunks_at_a_summary_only_write(
    private_home: Paths, keys: Keys
) -> None:
    store = Store.open(private_home, keys, seal_limit=LIMIT * 100)
    try:
        handle = store.begin_session(time.time_ns(), 0)
        for i in range(5):
            store.append_chunk(handle, [batch(i)[-1]])  # no new application: no summary
        with sqlite3.connect(private_home.db) as conn:  # as a version before the counter left it
            conn.execute("DELETE FROM meta WHERE key=?", ("seals:" + handle.id,))
            (top,) = conn.execute(
                "SELECT max(idx) FROM chunks WHERE session_id=?", (handle.id,)
            ).fetchone()
            # Its first write since then seals only a summary.
            conn.execute("UPDATE sessions SET summary=x'00' WHERE id=?", (handle.id,))
        conn.close()
        assert seals_used(store._conn, handle.id) >= 2 * top + 1
    finally:
        store.close()
