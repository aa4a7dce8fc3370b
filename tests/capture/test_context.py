"""The context the writer puts in the stream: the whole of it when a session
opens, then only changes, and only of the categories recorded now."""

from __future__ import annotations

from cleartrace.capture.context import Context, ScreenItem
from cleartrace.categories import Category
from cleartrace.events import Kind

SCREEN: list[ScreenItem] = [
    (int(Kind.SCREEN), 1, 1280, 800, 100),
    (int(Kind.MONITOR), 0, 0, 1280, 800),
]
ALL = frozenset(Category)


def test_a_session_opens_with_the_whole_context_and_then_gets_its_changes() -> None:
    context = Context()
    context.allow(ALL, 0)
    context.screen(SCREEN, 5)
    context.layout(0, "us", 6)
    # Stamped at the opening: the session did not exist before it.
    assert context.take(opening_at=100) == [
        (100, int(Kind.SCREEN), 1, 1280, 800, 100, None),
        (100, int(Kind.MONITOR), 0, 0, 1280, 800, None),
        (100, int(Kind.LAYOUT), 0, 0, 0, 0, ("us", None)),
    ]
    context.screen(SCREEN, 150)  # unchanged: nothing to say
    context.layout(1, "de", 200)
    assert context.take() == [(200, int(Kind.LAYOUT), 1, 0, 0, 0, ("de", None))]
    assert context.take() == []
    # The next session stands alone: it opens with all of it again.
    assert [ev[1] for ev in context.take(opening_at=300)] == [10, 11, 12]


def test_only_recorded_categories_and_a_category_given_later_gets_the_current_state() -> None:
    context = Context()
    context.allow(frozenset({Category.KEYS}), 0)
    context.screen(SCREEN, 5)
    context.layout(0, "us", 6)
    assert context.take() == [(6, int(Kind.LAYOUT), 0, 0, 0, 0, ("us", None))]
    context.allow(frozenset({Category.KEYS, Category.CLICKS}), 50)
    assert [(ev[0], ev[1]) for ev in context.take()] == [(50, 10), (50, 11)]
    context.allow(frozenset(), 60)  # paused: nothing
    context.layout(1, "de", 70)
    assert context.take() == []
    assert context.take(opening_at=80) == []


def test_changes_after_until_wait_and_a_session_opens_with_the_context_in_force_then() -> None:
    context = Context()
    context.allow(ALL, 0)
    context.layout(0, "us", 5)
    context.layout(1, "ru", 200)  # not decided yet when the session opens
    assert context.take(opening_at=100, until=150) == [
        (100, int(Kind.LAYOUT), 0, 0, 0, 0, ("us", None))
    ]
    assert context.take(until=199) == []
    assert context.take(until=250) == [(200, int(Kind.LAYOUT), 1, 0, 0, 0, ("ru", None))]


def test_a_session_opens_with_the_first_state_read_however_late_it_was_reported() -> None:
    context = Context()
    context.allow(ALL, 0)
    context.screen(SCREEN, 300)  # read when the watcher started, reported after the opening
    context.layout(0, "us", 300)
    context.layout(1, "ru", 310)  # a change: waits for its time to be decided
    assert [(ev[0], ev[1]) for ev in context.take(opening_at=100, until=150)] == [
        (100, 10),
        (100, 11),
        (100, 12),
    ]
    assert context.take(until=400) == [(310, int(Kind.LAYOUT), 1, 0, 0, 0, ("ru", None))]
