"""Pointer actions: clicks (single, double, triple, right, middle), drags and scrolls.

Vectorised over the bundle's button and scroll events (moves are never
actions and are only skipped). Times are compared on the 1/60 s frame grid
that pointer events are floored to when a bundle leaves the device without
`typing_rhythm` (upload/retiming.py), so that the raw events and the
re-timed ones give the same actions: flooring a floored time changes
nothing.
"""

from __future__ import annotations

import numpy as np

from cleartrace.events import Kind
from cleartrace.org.action_found import Act, Found, Ints, empty, found

__all__ = [
    "DOUBLE_CLICK_NS",
    "DOUBLE_CLICK_PX",
    "DRAG_PX",
    "FRAME_NS",
    "SCROLL_GAP_NS",
    "clicks",
    "scrolls",
]

#: The frame grid pointer times are floored to before they leave a device
#: without typing_rhythm: 1/60 s in whole microseconds, from the epoch.
FRAME_NS = 16_667_000
#: A click follows the previous one's release within this (on the frame grid)...
DOUBLE_CLICK_NS = 500_000_000
#: ... and at most this far from its press, to make a double or triple click.
DOUBLE_CLICK_PX = 4
#: A release farther than this from its press makes the press and release a drag.
DRAG_PX = 5
#: Scroll steps in the same direction closer than this are one scroll action.
SCROLL_GAP_NS = 500_000_000

#: Events after which no earlier action goes on: a button press, a focus change, an exclusion.
BREAKS = np.array([Kind.BUTTON_DOWN, Kind.FOCUS, Kind.EXCLUDED_START, Kind.EXCLUDED_END], np.uint8)


def frames(t: Ints) -> Ints:
    """The 1/60 s frame of each wall-clock time."""
    return t // FRAME_NS


def clicks(t: Ints, kind: Ints, a: Ints, b: Ints, c: Ints) -> Found:
    """Clicks, multiple clicks and drags: each a press and the release of the same
    button (1 to 3) right after it among that button's events."""
    buttons = np.flatnonzero(
        ((kind == Kind.BUTTON_DOWN) | (kind == Kind.BUTTON_UP)) & (c >= 1) & (c <= 3)
    )
    if len(buttons) < 2:
        return empty()
    by_button = buttons[np.lexsort((buttons, c[buttons]))]
    pressed = kind[by_button] == Kind.BUTTON_DOWN
    paired = pressed[:-1] & ~pressed[1:] & (c[by_button[:-1]] == c[by_button[1:]])
    downs, ups = by_button[:-1][paired], by_button[1:][paired]
    order = np.argsort(downs, kind="stable")
    downs, ups = downs[order], ups[order]
    n = len(downs)
    if n == 0:
        return empty()
    button = c[downs]
    drag = (a[ups] - a[downs]) ** 2 + (b[ups] - b[downs]) ** 2 > DRAG_PX**2
    link = np.zeros(n, bool)
    if n > 1:
        fr = frames(t)
        left = (button == 1) & ~drag
        link[1:] = (
            left[1:]
            & left[:-1]
            & ((fr[downs[1:]] - fr[ups[:-1]]) * FRAME_NS <= DOUBLE_CLICK_NS)
            & ((a[downs[1:]] - a[downs[:-1]]) ** 2 + (b[downs[1:]] - b[downs[:-1]]) ** 2
               <= DOUBLE_CLICK_PX**2)
        )  # fmt: skip
    # Chains of linked clicks, cut into actions of at most three.
    chain_start = np.maximum.accumulate(np.where(link, 0, np.arange(n)))
    new = ~link | ((np.arange(n) - chain_start) % 3 == 0)
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:] - 1, n - 1)
    count = ends - starts + 1
    first_button = button[starts]
    act = np.select(
        [drag[starts], first_button == 3, first_button == 2, count == 3, count == 2],
        [Act.DRAG, Act.RIGHT_CLICK, Act.MIDDLE_CLICK, Act.TRIPLE_CLICK, Act.DOUBLE_CLICK],
        Act.CLICK,
    )
    first, last = downs[starts], ups[ends]
    return found(
        first, last, act, x=a[first], y=b[first], to_x=a[last], to_y=b[last], button=first_button
    )


def scrolls(t: Ints, kind: Ints, a: Ints, b: Ints, c: Ints, d: Ints) -> Found:
    """Scroll steps in a row merged: same direction, less than SCROLL_GAP_NS apart, no
    button press, focus change or exclusion between them (moves and keys do not
    split a scroll: re-timing keeps their order against keys only within a frame)."""
    steps = np.flatnonzero((kind == Kind.SCROLL) & ((c != 0) | (d != 0)))
    if len(steps) == 0:
        return empty()
    breaks = np.cumsum(np.isin(kind, BREAKS))[steps]
    sx, sy, fr = np.sign(c[steps]), np.sign(d[steps]), frames(t[steps])
    new = np.ones(len(steps), bool)
    new[1:] = (
        (sx[1:] != sx[:-1])
        | (sy[1:] != sy[:-1])
        | ((fr[1:] - fr[:-1]) * FRAME_NS >= SCROLL_GAP_NS)
        | (breaks[1:] != breaks[:-1])
    )
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:] - 1, len(steps) - 1)
    first, last = steps[starts], steps[ends]
    act = np.full(len(starts), Act.SCROLL, np.int64)
    return found(
        first,
        last,
        act,
        x=a[first],
        y=b[first],
        dx=np.add.reduceat(c[steps], starts),
        dy=np.add.reduceat(d[steps], starts),
    )
