"""Deciding events by the time of the focus change: the timeline and the resolver alone.

The X server end to end is in test_exclusion_timing.py; these pin the rules at
the millisecond: what is certainly before, what may be, and what waits.
"""

from __future__ import annotations

import queue
import threading

from cleartrace.capture.base import StampedEvent
from cleartrace.capture.pipeline import Writer
from cleartrace.capture.resolve import MAX_HELD_NS, Resolver
from cleartrace.capture.timeline import LAG_MS, UNKNOWN, FocusState, FocusTimeline
from cleartrace.events import FocusText, Kind, RawEvent

EDITOR: FocusText = ("Gedit", None)
VAULT: FocusText = ("KeePassXC", None)
OTHER: FocusText = ("Xterm", None)
T = 5_000_000  # a server time (ms)


def judge(window: FocusText | None) -> FocusState:
    if window is None:
        return UNKNOWN
    return FocusState(True, None) if window == VAULT else FocusState(False, window)


def key(x: int, char: str) -> StampedEvent:
    """A key press delivered 2 ms after its server time (monotonic = server ms, here)."""
    return ((x + 2) * 1_000_000, int(Kind.KEY_DOWN), ord(char), 0, 0, 0, None, x & 0xFFFFFFFF)


def wake() -> None:
    """A watcher's wake-up, for a timeline with no watcher thread."""


def started(at: int = T - 1000) -> tuple[FocusTimeline, Resolver]:
    timeline = FocusTimeline(judge)
    timeline.attach(wake)
    timeline.untimed(EDITOR)
    token = timeline.probe_token()
    timeline.confirm(at & 0xFFFFFFFF, token, at * 1_000_000)
    return timeline, Resolver(timeline)


def confirm(timeline: FocusTimeline, x: int, *, final: bool = False) -> None:
    timeline.confirm(x & 0xFFFFFFFF, timeline.probe_token(), x * 1_000_000, final=final)


def text_of(out: list[RawEvent]) -> list[str]:
    """Keys as characters, markers as [ and ], focus events as the app."""
    marks = {int(Kind.EXCLUDED_START): "[", int(Kind.EXCLUDED_END): "]"}
    shown = []
    for ev in out:
        if ev[1] == Kind.KEY_DOWN:
            shown.append(chr(ev[2]))
        elif ev[1] in marks:
            assert ev[2:] == (0, 0, 0, 0, None)  # a marker has no content
            shown.append(marks[ev[1]])
        else:
            assert ev[6] is not None
            shown.append(f"<{ev[6][0]}>")
    return shown


def test_keys_from_the_millisecond_of_the_change_into_a_vault_are_dropped() -> None:
    timeline, resolver = started()
    before = T - LAG_MS - 1
    resolver.add([key(before, "a"), key(T - LAG_MS, "b"), key(T, "c"), key(T + 7, "d")])
    timeline.timed(T, VAULT)
    timeline.timed(T + 20, EDITOR)
    resolver.add([key(T + 20, "e"), key(T + 21, "f")])
    confirm(timeline, T + 21 + LAG_MS + 1)
    out = resolver.resolve(timeline.view())
    assert text_of(out) == ["<Gedit>", "a", "[", "]", "<Gedit>", "f"]
    assert resolver.held == 0
    assert [ev[0] for ev in out] == sorted(ev[0] for ev in out)


def test_an_event_waits_until_the_watermark_is_lag_past_it() -> None:
    timeline, resolver = started()
    resolver.add([key(T, "a")])
    confirm(timeline, T + LAG_MS)  # a change at T + LAG_MS could still have come first
    assert text_of(resolver.resolve(timeline.view())) == ["<Gedit>"]
    assert resolver.held == 1
    timeline.timed(T + LAG_MS, VAULT)
    confirm(timeline, T + LAG_MS + 1)
    assert text_of(resolver.resolve(timeline.view())) == ["["]
    assert resolver.held == 0


def test_an_untimed_change_taints_its_whole_span_and_attributes_from_its_confirmation() -> None:
    timeline, resolver = started(T)
    resolver.add([key(T + 10, "a"), key(T + 300, "b")])
    timeline.untimed(OTHER)  # found out, not told: any time since the watermark T
    confirm(timeline, T + 500)
    resolver.add([key(T + 501, "c")])
    timeline.untimed(VAULT)
    confirm(timeline, T + 800)
    resolver.add([key(T + 700, "d"), key(T + 900, "e")])
    confirm(timeline, T + 2000)
    out = text_of(resolver.resolve(timeline.view()))
    # a, b: still the editor until confirmed; c: Xterm, but the vault may have
    # come any time after T + 500 (and LAG_MS before that); d, e: the vault.
    assert out == ["<Gedit>", "a", "b", "["]


def test_the_final_watermark_decides_everything_the_stopped_hooks_delivered() -> None:
    timeline, resolver = started()
    resolver.add([key(T, "a"), key(T + 1, "b")])
    confirm(timeline, T + 5, final=True)
    timeline.detach(wake, final=True)
    assert text_of(resolver.resolve(timeline.view())) == ["<Gedit>", "a", "b"]
    # A pause: nothing is watched until the watcher starts again; the gap is
    # excluded for any event in it but is no excluded interval of its own.
    timeline.untimed(EDITOR)
    confirm(timeline, T + 60_000)
    resolver.add([key(T + 60_001, "c")])
    confirm(timeline, T + 60_001 + LAG_MS + 1)
    assert text_of(resolver.resolve(timeline.view())) == ["c"]


def test_an_unknown_window_is_excluded() -> None:
    timeline, resolver = started()
    resolver.add([key(T - 500, "a")])
    timeline.timed(T, None)  # it vanished before its class could be read
    resolver.add([key(T + 50, "b")])
    confirm(timeline, T + 50 + LAG_MS + 1)
    assert text_of(resolver.resolve(timeline.view())) == ["<Gedit>", "a", "["]


def test_server_time_wraps_after_49_days() -> None:
    wrap = 1 << 32
    timeline, resolver = started(wrap - 200)
    resolver.add([key(wrap - 150, "a")])
    timeline.timed(wrap + 10, VAULT)  # the server's 32-bit clock read 10
    resolver.add([key(wrap + 20, "b")])
    confirm(timeline, wrap + 500)
    assert text_of(resolver.resolve(timeline.view())) == ["<Gedit>", "a", "["]


def test_a_key_delivered_after_a_stall_is_judged_up_to_its_delivery() -> None:
    """The server stamped the key before the change into the vault but, stalled,
    routed it only later: the hook got it 450 ms after its stamp."""
    timeline, resolver = started()
    resolver.add([key(T - 900, "a")])
    timeline.timed(T, VAULT)
    x = T - LAG_MS - 50
    stalled: StampedEvent = ((T + 300) * 1_000_000, int(Kind.KEY_DOWN), ord("b"), 0, 0, 0, None, x)
    resolver.add([stalled])
    confirm(timeline, T + 1000)
    assert text_of(resolver.resolve(timeline.view())) == ["<Gedit>", "a", "["]
    assert resolver.held == 0


def test_events_out_of_order_in_one_batch_are_decided_in_server_time_order() -> None:
    """The keyboard and mouse hooks run on two threads: a batch may interleave them."""
    timeline, resolver = started()
    timeline.timed(T, VAULT)
    resolver.add([key(T + 50, "b"), key(T - 500, "a")])
    confirm(timeline, T + 1000)
    assert text_of(resolver.resolve(timeline.view())) == ["<Gedit>", "a", "["]


def test_server_times_just_past_half_the_range_at_start_unwrap_continuously() -> None:
    """A server up 24.9 days: the first time seen is past 2**31, an event
    stamped just before that is earlier, not 49 days later."""
    half = 1 << 31
    timeline, resolver = started(half + 100)
    resolver.add([key(half - 50, "a"), key(half + 150, "b")])
    confirm(timeline, half + 400)
    assert text_of(resolver.resolve(timeline.view())) == ["<Gedit>", "a", "b"]
    assert resolver.held == 0


def test_rejudging_never_overwrites_a_focus_change_reported_meanwhile() -> None:
    """A focus change into the vault arrives while the recorder judges the
    window it had before again (new exclusions): the vault must win."""
    moved: list[threading.Thread] = []

    def slow_judge(window: FocusText | None) -> FocusState:
        if window == EDITOR and not moved:
            thread = threading.Thread(target=timeline.timed, args=(T & 0xFFFFFFFF, VAULT))
            moved.append(thread)
            thread.start()
            thread.join(0.3)  # blocked on the timeline's lock, or done
        return judge(window)

    timeline = FocusTimeline(judge)
    timeline.untimed(EDITOR)
    confirm(timeline, T - 1000)
    timeline._judge = slow_judge
    timeline.rejudge()
    moved[0].join()
    assert timeline.current.excluded


def test_events_no_watermark_decides_are_dropped_after_a_while() -> None:
    """The focus watcher died: nothing confirms where the keys went, and the
    writer must not hold them (or their memory) for the rest of the session."""
    timeline = FocusTimeline(judge)
    timeline.untimed(EDITOR)
    confirm(timeline, T - 1000)
    source: queue.SimpleQueue[StampedEvent] = queue.SimpleQueue()
    written: list[RawEvent] = []
    clock = [T * 1_000_000]
    writer = Writer(source, written.extend, lambda: clock[0], timeline)
    source.put(key(T, "a"))
    writer.flush_now(final=False)
    assert text_of(written) == ["<Gedit>"]
    clock[0] += MAX_HELD_NS + 1_000_000_000
    writer.flush_now(final=False)
    assert text_of(written) == ["<Gedit>", "[", "]"]
