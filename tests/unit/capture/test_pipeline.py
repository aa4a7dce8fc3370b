from __future__ import annotations

import itertools
import queue
import time

import pytest

from cleartrace.capture.pipeline import MoveCoalescer, Writer
from cleartrace.events import Kind, RawEvent

MS = 1_000_000
MOVE, KEY = int(Kind.MOVE), int(Kind.KEY_DOWN)


def move(t_ms: float, x: int) -> RawEvent:
    return (int(t_ms * MS), MOVE, x, 0, 0, 0, None)


def test_coalescer_keeps_at_most_one_move_per_bin_at_120_hz() -> None:
    c = MoveCoalescer(120)
    moves = [move(i * 1.0, i) for i in range(1000)]  # 1 kHz for one second
    out = c.feed(moves, now_ns=2_000 * MS) + c.flush()
    assert 119 <= len(out) <= 121
    assert out[-1] == moves[-1]  # the final position is never lost
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(out)]
    assert min(gaps) >= 1 * MS


def test_coalescer_emits_held_move_before_a_click_so_its_position_is_exact() -> None:
    c = MoveCoalescer(120)
    click = (int(2.5 * MS), int(Kind.BUTTON_DOWN), 7, 0, 1, 0, None)
    out = c.feed([move(1, 5), move(2, 7), click], now_ns=3 * MS)
    assert out == [move(2, 7), click]


def test_coalescer_holds_the_newest_move_until_its_bin_has_passed() -> None:
    c = MoveCoalescer(100)  # 10 ms bins
    assert c.feed([move(1, 1), move(3, 2)], now_ns=5 * MS) == []
    assert c.feed([], now_ns=12 * MS) == [move(3, 2)]


def test_writer_flushes_every_interval_and_drains_all_on_stop() -> None:
    q: queue.SimpleQueue[RawEvent] = queue.SimpleQueue()
    batches: list[list[RawEvent]] = []
    w = Writer(q, batches.append, time.monotonic_ns, flush_interval=0.05)
    w.start()
    q.put((time.monotonic_ns(), KEY, 97, 0, 0, 0, None))
    deadline = time.monotonic() + 2
    while not batches and time.monotonic() < deadline:
        time.sleep(0.01)
    assert batches
    assert batches[0][0][2] == 97
    for i in range(500):
        q.put((time.monotonic_ns(), KEY, i, 0, 0, 0, None))
    w.stop()
    w.join(timeout=2)
    assert sum(len(b) for b in batches) == 501


def test_writer_error_surfaces_from_join() -> None:
    q: queue.SimpleQueue[RawEvent] = queue.SimpleQueue()

    def broken(batch: list[RawEvent]) -> None:
        raise OSError("disk went away")

    w = Writer(q, broken, time.monotonic_ns, flush_interval=0.01)
    w.start()
    q.put((1, KEY, 97, 0, 0, 0, None))
    time.sleep(0.1)
    with pytest.raises(OSError, match="disk went away"):
        w.join(timeout=2)
    assert isinstance(w.failed, OSError)
