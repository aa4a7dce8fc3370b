"""The per-minute activity summary behind the review timeline."""

from __future__ import annotations

from random import Random

from cleartrace.events import Event, Kind
from cleartrace.review.activity import (
    MINUTE_NS,
    ActivityCount,
    MinuteActivity,
    activity_per_minute,
)

T0 = 5 * 10**12  # monotonic clocks do not start at zero
S = 10**9


def at(seconds: float, kind: Kind, a: int = 0) -> Event:
    return Event(T0 + int(seconds * S), kind, a)


def test_no_events_no_minutes() -> None:
    assert activity_per_minute([]) == []


def test_counts_each_kind_in_the_minute_it_happened_from_the_first_event() -> None:
    events = [
        at(0, Kind.FOCUS),
        at(1, Kind.KEY_DOWN, 0x61),
        at(1.1, Kind.KEY_UP, 0x61),
        at(1.2, Kind.KEY_DOWN, 0x61),  # auto-repeat: each press counts
        at(2, Kind.MOVE),
        at(59.9, Kind.MOVE),
        at(60, Kind.BUTTON_DOWN, 1),
        at(60.1, Kind.BUTTON_UP, 1),
        at(61, Kind.SCROLL),
        at(62, Kind.SCROLL),
        at(179, Kind.MOVE),
    ]
    assert activity_per_minute(events) == [
        MinuteActivity(0, keys=2, moves=2),
        MinuteActivity(1, clicks=1, scrolls=2),
        MinuteActivity(2, moves=1),
    ]


def test_quiet_minutes_are_listed_with_zero_counts() -> None:
    minutes = activity_per_minute([at(0, Kind.MOVE), at(5 * 60 + 1, Kind.MOVE)])
    assert [m.minute for m in minutes] == [0, 1, 2, 3, 4, 5]
    assert [m.moves for m in minutes] == [1, 0, 0, 0, 0, 1]


def test_excluded_intervals_shade_every_minute_they_touch() -> None:
    events = [
        at(0, Kind.KEY_DOWN, 0x61),
        at(70, Kind.EXCLUDED_START),
        at(200, Kind.EXCLUDED_END),
        at(250, Kind.KEY_DOWN, 0x62),
        at(300, Kind.MOVE),
    ]
    shaded = [m.minute for m in activity_per_minute(events) if m.excluded]
    assert shaded == [1, 2, 3]


def test_an_interval_still_open_at_the_end_shades_up_to_the_last_minute() -> None:
    events = [at(0, Kind.MOVE), at(130, Kind.EXCLUDED_START), at(250, Kind.MOVE)]
    assert [m.excluded for m in activity_per_minute(events)] == [False, False, True, True, True]


def test_an_event_stamped_before_the_first_counts_in_minute_zero() -> None:
    events = [at(10, Kind.MOVE), at(9.5, Kind.KEY_DOWN, 0x61), at(10 + MINUTE_NS / S, Kind.MOVE)]
    assert [(m.minute, m.keys, m.moves) for m in activity_per_minute(events)] == [
        (0, 1, 1),
        (1, 0, 1),
    ]


def test_counted_a_chunk_at_a_time_as_from_the_whole_list() -> None:
    rnd = Random(5)  # noqa: S311 - a reproducible session, not a secret
    kinds = [Kind.MOVE, Kind.KEY_DOWN, Kind.KEY_UP, Kind.BUTTON_DOWN, Kind.SCROLL, Kind.FOCUS]
    kinds += [Kind.EXCLUDED_START, Kind.EXCLUDED_END]
    events, t = [], 0.0
    for _ in range(3000):
        t += rnd.expovariate(1 / 4)
        events.append(at(t - rnd.random() * 0.5, rnd.choice(kinds)))
    raw = [(e.t_ns, int(e.kind), e.a, 0, 0, 0, None) for e in events]
    for cuts in ([], [1], [1000, 1001, 2500], list(range(0, 3000, 7))):
        counting = ActivityCount()
        for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True):
            counting.feed(raw[a:b])
        assert counting.finish() == activity_per_minute(events)
        assert counting.first_t_ns == events[0].t_ns


def test_nothing_fed_no_minutes_and_no_first_event() -> None:
    counting = ActivityCount()
    counting.feed([])
    assert (counting.finish(), counting.first_t_ns) == ([], None)
