"""Store.redact on a real SQLite file: the events really go, in place, for good."""

from __future__ import annotations

import time

import pytest

from cleartrace.errors import UsageError
from cleartrace.events import Kind, RawEvent
from cleartrace.paths import Paths
from cleartrace.store import compaction
from cleartrace.store.keys import Keys
from cleartrace.store.redaction import Redaction
from cleartrace.store.sessions import SessionHandle, Store
from tests.support.canaries import CANARY, assert_absent, canary_forms
from tests.support.sessions import typed


def closed_session(store: Store, batches: list[list[RawEvent]]) -> SessionHandle:
    handle = store.begin_session(10**18, 0)
    for batch in batches:
        store.append_chunk(handle, batch)
    store.end_session(handle, 10**18 + 60 * 10**9)
    return handle


def layout(store: Store, session_id: str) -> list[tuple[int, bytes]]:
    sql = "SELECT idx, blob FROM chunks WHERE session_id=? ORDER BY idx"
    return [(i, bytes(b)) for i, b in store._conn.execute(sql, (session_id,))]


def keys_of(store: Store, session_id: str) -> str:
    from cleartrace.events import char_of_keysym

    return "".join(
        char_of_keysym(e.a) or "?" for e in store.read_events(session_id) if e.kind is Kind.KEY_DOWN
    )


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compaction into chunks of 20 events, so a session spans several."""
    monkeypatch.setattr(compaction, "COMPACT_EVENTS", 20)


@pytest.mark.usefixtures("small_chunks")
def test_redaction_removes_exactly_the_events_and_leaves_a_marker(store: Store) -> None:
    text = "abcde" + CANARY + "fghij"  # 20 characters, 40 events, two chunks of 20
    handle = closed_session(store, [typed(text[:10]), typed(text[10:], 10**10)])
    before = layout(store, handle.id)
    start = 2 * 5  # the press and release of each secret character
    positions = range(start, start + 2 * len(CANARY))

    done = store.redact(handle.id, positions, method="span")

    assert keys_of(store, handle.id) == "abcdefghij"
    assert done.removed == {"keys": 2 * len(CANARY)}
    assert done.count == len(positions)
    # from the press of its first character to the release of its last
    assert (done.from_ns, done.to_ns) == (
        10**18 + 5 * 2_000_000,
        10**18 + 10**10 + 4 * 2_000_000 + 10**6,
    )
    assert store.session(handle.id).counts == {"keys": 20}
    assert store.redactions(handle.id) == [
        Redaction(handle.id, "span", done.at_ns, done.from_ns, done.to_ns, done.removed)
    ]
    after = layout(store, handle.id)
    # Both chunks held secret events: each was re-sealed just after its old index.
    assert [i for i, _ in after] == [i + 1 for i, _ in before]
    assert not {b for _, b in before} & {b for _, b in after}


@pytest.mark.usefixtures("small_chunks")
def test_chunks_without_removed_events_are_not_touched(store: Store) -> None:
    handle = closed_session(
        store, [typed("a" * 10), typed("b" * 10, 10**10), typed("c" * 10, 2 * 10**10)]
    )
    before = layout(store, handle.id)
    store.redact(handle.id, [20, 21], method="match")  # the first 'b'
    after = layout(store, handle.id)
    assert after[0] == before[0]
    assert after[2] == before[2]
    assert after[1][0] == before[1][0] + 1
    assert keys_of(store, handle.id) == "a" * 10 + "b" * 9 + "c" * 10


def test_old_ciphertext_and_text_are_in_no_file_afterwards(
    store: Store, private_home: Paths
) -> None:
    handle = closed_session(
        store, [[(0, int(Kind.FOCUS), 0, 0, 0, 0, ("Xterm", "notes"))], typed(CANARY, 10**9)]
    )
    old = [blob for _, blob in layout(store, handle.id)]
    store.redact(handle.id, range(1, 1 + 2 * len(CANARY)), method="pii")
    # The ciphertext that held the secret is gone from the database, WAL and SHM,
    # so not even the session key could bring it back.
    assert_absent([*canary_forms(), *(b[13:45] for b in old)], private_home)
    assert [e.kind for e in store.read_events(handle.id)] == [Kind.FOCUS]


@pytest.mark.usefixtures("small_chunks")
def test_with_no_gap_left_the_tail_is_resealed_in_order(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compaction, "GAP", 1)  # consecutive indices: no room between
    handle = closed_session(
        store, [typed("a" * 10), typed("b" * 10, 10**10), typed("c" * 10, 2 * 10**10)]
    )
    before = [i for i, _ in layout(store, handle.id)]
    assert before == [before[0], before[0] + 1, before[0] + 2]
    store.redact(handle.id, [20, 21], method="span")
    after = [i for i, _ in layout(store, handle.id)]
    assert after[0] == before[0]
    assert min(after[1:]) > before[-1]
    assert keys_of(store, handle.id) == "a" * 10 + "b" * 9 + "c" * 10


@pytest.mark.usefixtures("small_chunks")
def test_an_index_is_never_reused_after_the_last_chunk_went(store: Store) -> None:
    handle = closed_session(store, [typed("a" * 10), typed("b" * 10, 10**10)])
    first, last = (i for i, _ in layout(store, handle.id))
    store.redact(handle.id, range(20, 40), method="time")  # the whole last chunk
    assert [i for i, _ in layout(store, handle.id)] == [first]
    store.redact(handle.id, [0, 1], method="span")
    (now,) = (i for i, _ in layout(store, handle.id))
    assert now > last  # not first + 1, which may equal an index used before
    assert keys_of(store, handle.id) == "a" * 9


def test_focus_removal_updates_the_sealed_application_list(store: Store) -> None:
    focus = [
        (0, int(Kind.FOCUS), 0, 0, 0, 0, ("Gedit", None)),
        (10**9, int(Kind.FOCUS), 0, 0, 0, 0, ("Xterm", None)),
    ]
    handle = closed_session(store, [focus])
    assert store.session(handle.id).applications == ["Gedit", "Xterm"]
    store.redact(handle.id, [1], method="time")
    info = store.session(handle.id)
    assert (info.applications, info.counts) == (["Gedit"], {"app_focus": 1})


def test_exclusion_markers_are_never_removed(store: Store) -> None:
    events = [
        (0, int(Kind.EXCLUDED_START), 0, 0, 0, 0, None),
        (10, int(Kind.EXCLUDED_END), 0, 0, 0, 0, None),
        *typed("ab", 100),
    ]
    handle = closed_session(store, [events])
    done = store.redact(handle.id, range(6), method="time")
    assert done.removed == {"keys": 4}
    assert [e.kind for e in store.read_events(handle.id)] == [
        Kind.EXCLUDED_START,
        Kind.EXCLUDED_END,
    ]


def test_the_record_commits_with_the_redaction(store: Store) -> None:
    handle = closed_session(store, [typed("abc")])
    seen: list[Redaction] = []

    def record(conn: object, redaction: Redaction) -> None:
        seen.append(redaction)
        raise RuntimeError("ledger failed")

    with pytest.raises(RuntimeError):
        store.redact(handle.id, [0, 1], method="span", record=record)
    assert len(seen) == 1
    assert keys_of(store, handle.id) == "abc"  # rolled back: nothing changed
    assert store.redactions(handle.id) == []


def test_bad_positions_and_live_sessions_change_nothing(
    store: Store, private_home: Paths, keys: Keys
) -> None:
    handle = closed_session(store, [typed("abc")])
    with pytest.raises(UsageError, match="has 6 events"):
        store.redact(handle.id, [6], method="span")
    with pytest.raises(UsageError, match="has 6 events"):
        store.redact(handle.id, [-1], method="span")
    assert keys_of(store, handle.id) == "abc"
    live = store.begin_session(time.time_ns(), time.monotonic_ns())
    store.append_chunk(live, typed("xy"))
    other = Store.open(private_home, keys)
    try:
        with pytest.raises(UsageError, match="still being recorded"):
            other.redact(live.id, [0], method="span")
    finally:
        other.close()


def test_nothing_to_remove_writes_nothing(store: Store) -> None:
    handle = closed_session(store, [typed("abc")])
    before = layout(store, handle.id)
    assert store.redact(handle.id, [], method="match").count == 0
    assert layout(store, handle.id) == before
    assert store.redactions(handle.id) == []


def test_indices_between_selects_by_wall_clock(store: Store) -> None:
    handle = closed_session(store, [typed("abcd")])  # key i at i*2 ms after the start
    lo, hi = 10**18 + 2_000_000, 10**18 + 6_000_000
    assert store.indices_between(handle.id, lo, hi) == [2, 3, 4, 5]


def test_review_states_and_due_sessions(store: Store) -> None:
    handle = closed_session(store, [typed("a")])
    ended = 10**18 + 60 * 10**9
    assert store.due_for_approval(ended + 10, 100) == []
    assert store.due_for_approval(ended + 100, 100) == [handle.id]
    assert store.set_state(handle.id, "held") is True
    assert store.set_state(handle.id, "held") is False
    assert store.due_for_approval(ended + 100, 100) == []
    assert store.set_state(handle.id, "approved") is True
    assert store.session(handle.id).state == "approved"
    with pytest.raises(ValueError, match="can be set to"):
        store.set_state(handle.id, "pending")


CONTEXT: list[RawEvent] = [
    (0, int(Kind.SCREEN), 1, 1280, 800, 100, None),
    (0, int(Kind.MONITOR), 0, 0, 1280, 800, None),
    (0, int(Kind.LAYOUT), 0, 0, 0, 0, ("us", None)),
    (1, int(Kind.FOCUS), 0, 0, 640, 480, ("Gedit", "notes")),
]


def test_context_is_not_counted_as_input_nor_its_layout_name_as_an_application(
    store: Store,
) -> None:
    handle = closed_session(store, [CONTEXT + typed("ab", 10**9)])
    info = store.session(handle.id)
    assert info.counts == {"app_focus": 1, "keys": 4}
    assert info.applications == ["Gedit"]
    # Redacting the context takes nothing off the counts of input.
    store.redact(handle.id, range(3), method="time")
    assert store.session(handle.id).counts == {"app_focus": 1, "keys": 4}
    store.redact(handle.id, range(2), method="time")  # the focus and a key press
    assert store.session(handle.id).counts == {"keys": 3}
