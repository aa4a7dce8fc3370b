"""The keyboard and screen layouts in the written stream around excluded
windows: a change made while a password manager has the focus is never
written before its exclusion marker, and a session that opens in one says
nothing of its context until the exclusion ends. Real writer and timeline,
driven by hand (server time = monotonic ms)."""

from __future__ import annotations

import queue

from cleartrace.capture.base import StampedEvent
from cleartrace.capture.pipeline import Writer
from cleartrace.capture.timeline import FocusedWindow, FocusState, FocusTimeline
from cleartrace.categories import Category
from cleartrace.events import Kind, RawEvent

MS = 1_000_000
EDITOR = FocusedWindow("Gedit", None, (("Gedit", "gedit"),))
VAULT = FocusedWindow("KeePassXC", None, (("KeePassXC", "keepassxc"),))
LAYOUT, START, END = int(Kind.LAYOUT), int(Kind.EXCLUDED_START), int(Kind.EXCLUDED_END)


def judge(window: FocusedWindow | None) -> FocusState:
    if window is None or window.app == "KeePassXC":
        return FocusState(True, None)
    return FocusState(False, (window.app, None))


class Desk:
    """A writer over a timeline whose watcher the test plays by hand."""

    def __init__(self) -> None:
        self.timeline = FocusTimeline(judge)
        self.timeline.untimed(EDITOR)
        self.context = self.timeline.context
        self.context.allow(frozenset(Category), 0)
        self.context.layout(0, "us", 500 * MS)
        self.confirm(1000)
        self.source: queue.SimpleQueue[StampedEvent] = queue.SimpleQueue()
        self.chunks: list[list[RawEvent]] = []
        self.now = 1000 * MS
        self.writer = Writer(self.source, self.chunks.append, lambda: self.now, self.timeline)

    def confirm(self, ms: int) -> None:
        self.timeline.confirm(ms, self.timeline.probe_token(), ms * MS)

    def put(self, kind: Kind, ms: int, a: int = 0) -> None:
        self.source.put((ms * MS, int(kind), a, 0, 0, 0, None, ms))

    def flush(self, watermark: int) -> None:
        self.confirm(watermark)
        self.now = watermark * MS
        self.writer.flush_now(final=False)

    def written(self) -> list[RawEvent]:
        return [ev for chunk in self.chunks for ev in chunk]


def layouts_outside_exclusions(events: list[RawEvent]) -> list[tuple[int, str]]:
    """(ms, layout name) of each LAYOUT written outside the excluded intervals."""
    inside, out = False, []
    for ev in events:
        if ev[1] in (START, END):
            inside = ev[1] == START
        elif ev[1] == LAYOUT and not inside:
            assert ev[6] is not None
            out.append((ev[0] // MS, str(ev[6][0])))
    return out


def assert_in_time_order(events: list[RawEvent]) -> None:
    times = [ev[0] for ev in events]
    assert times == sorted(times)


def test_a_layout_switched_right_after_focus_moves_to_a_vault_is_not_written_before_it() -> None:
    desk = Desk()
    desk.put(Kind.KEY_DOWN, 1000, 97)
    desk.flush(1200)
    # A click moves the focus to the password manager at 2000; the desktop's
    # per-window layout switches the group 10 ms later.
    desk.put(Kind.BUTTON_DOWN, 1999, 1)
    desk.timeline.timed(2000, VAULT)
    desk.context.layout(1, "ru", 2010 * MS)
    desk.flush(2050)  # the click waits: the focus change is not decided yet
    desk.flush(2400)
    events = desk.written()
    assert START in [ev[1] for ev in events]
    assert [name for _, name in layouts_outside_exclusions(events)] == ["us"]
    assert_in_time_order(events)
    # Back in the editor, whose layout is switched back: the context in force
    # is told at the end of the exclusion, then the switch.
    desk.timeline.timed(3000, EDITOR)
    desk.context.layout(0, "us", 3010 * MS)
    desk.put(Kind.KEY_DOWN, 3200, 98)
    desk.flush(3500)
    events = desk.written()
    assert [ev[1] for ev in events].count(END) == 1
    assert layouts_outside_exclusions(events)[-1][1] == "us"
    start = next(ev[0] for ev in events if ev[1] == START)
    end = next(ev[0] for ev in events if ev[1] == END)
    assert all(not start <= ev[0] < end for ev in events if ev[1] == LAYOUT)
    assert_in_time_order(events)


def test_a_session_opening_in_a_vault_tells_its_context_only_when_the_exclusion_ends() -> None:
    desk = Desk()
    desk.timeline.timed(1500, VAULT)  # before the session's first input
    desk.context.layout(1, "ru", 1510 * MS)
    desk.confirm(1600)
    desk.put(Kind.KEY_DOWN, 1650, 112)  # the session's first input, typed in the vault
    desk.flush(1900)
    events = desk.written()
    assert [ev[1] for ev in events] == [START]
    desk.timeline.timed(2000, EDITOR)
    desk.context.layout(0, "us", 2010 * MS)
    desk.put(Kind.KEY_DOWN, 2200, 97)
    desk.flush(2500)
    events = desk.written()
    assert layouts_outside_exclusions(events)[-1][1] == "us"
    end = next(ev[0] for ev in events if ev[1] == END)
    assert all(ev[0] >= end for ev in events if ev[1] == LAYOUT)
    assert_in_time_order(events)


def test_a_session_opening_outside_a_vault_is_stamped_at_its_opening_not_before() -> None:
    desk = Desk()
    desk.context.layout(1, "de", 1500 * MS)
    desk.put(Kind.KEY_DOWN, 1650, 97)
    desk.flush(1900)
    events = desk.written()
    first = min(ev[0] for ev in events if ev[1] not in (LAYOUT,))
    layouts = [(ev[0], ev[6]) for ev in events if ev[1] == LAYOUT]
    assert layouts == [(first, ("de", None))]
    assert_in_time_order(events)


def test_a_layout_switched_while_nothing_is_typed_is_written_at_its_time() -> None:
    desk = Desk()
    desk.put(Kind.KEY_DOWN, 1000, 97)
    desk.flush(1200)
    desk.context.layout(1, "de", 1300 * MS)
    desk.flush(1500)  # no input since: the watermark alone decides it
    assert layouts_outside_exclusions(desk.written())[-1] == (1300, "de")
