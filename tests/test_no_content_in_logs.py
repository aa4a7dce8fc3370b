"""Captured content never reaches a log record or an error message."""

from __future__ import annotations

import logging
import queue
import time

import pytest

from cleartrace.capture.base import StampedEvent
from cleartrace.capture.pipeline import Writer
from cleartrace.capture.timeline import FocusState, FocusTimeline
from cleartrace.errors import ClearTraceError
from cleartrace.events import Kind, RawEvent, keysym_of_char
from cleartrace.paths import Paths, ensure_private_dirs
from cleartrace.store.chunks import open_chunk
from cleartrace.store.keys import load_keys
from cleartrace.store.sessions import Store

CANARY = "pwcanary77"


def test_store_and_writer_log_and_raise_no_content(
    private_home: Paths, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ensure_private_dirs(private_home)
    store = Store.open(private_home, load_keys(private_home, create=True))
    handle = store.begin_session(time.time_ns(), 0)
    source: queue.SimpleQueue[StampedEvent] = queue.SimpleQueue()
    timeline = FocusTimeline(lambda window: FocusState(False, window))
    timeline.untimed(("Xterm", CANARY))
    timeline.confirm(1, timeline.probe_token(), 1)
    for i, ch in enumerate(CANARY):
        source.put((10 + i, int(Kind.KEY_DOWN), keysym_of_char(ch), 0, 0, 0, None, 10 + i))
    timeline.confirm(100, timeline.probe_token(), 100, final=True)
    writer = Writer(
        source, lambda batch: store.append_chunk(handle, batch), time.monotonic_ns, timeline
    )
    writer.start()
    writer.stop()
    writer.join(timeout=5)
    store.end_session(handle, time.time_ns())
    messages: list[str] = []
    (blob,) = [b for (b,) in store._conn.execute("SELECT blob FROM chunks")]
    damaged = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(ClearTraceError) as bad:
        open_chunk(handle.key, handle.id, 99, damaged)
    messages.append(str(bad.value))

    def failing(batch: list[RawEvent]) -> None:
        raise ValueError("simulated failure")

    broken = Writer(source, failing, time.monotonic_ns, timeline, flush_interval=0.01)
    source.put((99, int(Kind.KEY_DOWN), keysym_of_char("q"), 0, 0, 0, None, 99))
    broken.start()
    with pytest.raises(ValueError, match="simulated"):
        broken.join(timeout=5)
    store.close()
    assert "writer stopped: ValueError" in caplog.text  # the failure itself is logged
    for text in [caplog.text, *messages]:
        assert CANARY not in text
        assert "Xterm" not in text
