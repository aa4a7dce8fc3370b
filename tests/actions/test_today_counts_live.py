"""Today's counts take the session being recorded from its recorder: they
must name and count what the store's counts of the same events do."""

from __future__ import annotations

import time
from collections import Counter

from cleartrace.actions.status import _today_counts
from cleartrace.capture.context import status_counts
from cleartrace.events import Kind
from cleartrace.status import RecorderState, RecorderStatus
from cleartrace.store.reading import SessionInfo
from cleartrace.store.session_state import SessionState
from cleartrace.store.tally import add_counts


def test_the_live_session_counts_its_excluded_intervals_as_the_store_does() -> None:
    kinds = [Kind.KEY_DOWN, Kind.KEY_UP, Kind.EXCLUDED_START, Kind.EXCLUDED_END, Kind.KEY_DOWN]
    stored: dict[str, int] = {}
    add_counts(bytes(map(int, kinds)), stored)  # what the store (and closing) counts
    recorder = RecorderStatus(
        pid=1,
        state=RecorderState.RECORDING,
        paused_until=None,
        hooks=("keyboard",),
        granted=("keys",),
        session="s1",
        excluded_now=False,
        application=None,
        counts=status_counts(Counter(map(int, kinds))),
    )
    now = time.time_ns()
    info = SessionInfo("s1", now, None, SessionState.RECORDING, stored, [])
    assert _today_counts([info], recorder) == _today_counts([info], None) == stored
