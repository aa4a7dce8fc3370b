"""Pointer actions: clicks (single, double, triple, right, middle), drags and scrolls.

Vectorised over the bundle's button and scroll events (moves are never
actions and are only skipped). Times are compared where a bundle sent
without `typing_rhythm` puts them (upload/retiming.py): on the 1/60 s frame
grid, and behind a key event that re-timing moved later (`frames`). Raw and
re-timed events then give the same actions: re-timing a re-timed bundle
changes nothing.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cleartrace.events import RUN_BREAKS, Kind
from cleartrace.org.action_found import Act, Found, Ints, empty, found
from cleartrace.upload.retiming import FRAME_US

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
FRAME_NS = FRAME_US * 1000
#: A click follows the previous one's release within this (on the frame grid)...
DOUBLE_CLICK_NS = 500_000_000
#: ... and at most this far from its press, to make a double or triple click.
DOUBLE_CLICK_PX = 4
#: A release farther than this from its press makes the press and release a drag.
DRAG_PX = 5
#: Scroll steps in the same direction closer than this are one scroll action.
SCROLL_GAP_NS = 500_000_000

#: Events after which no earlier action goes on (events.RUN_BREAKS: a button
#: press, a focus change, an exclusion, a new screen layout).
BREAKS = np.array(RUN_BREAKS, np.uint8)


_EXCLUSIONS = np.array([Kind.EXCLUDED_START, Kind.EXCLUDED_END], np.uint8)


def _clipped(sums: Ints) -> Ints:
    """Sums of scroll steps held to int32, the column's type (a hostile device's
    steps could add up past it; a real wheel never does)."""
    info = np.iinfo(np.int32)
    clipped: Ints = np.clip(sums, info.min, info.max)
    return clipped


def frames(t: Ints, keys: Ints, paced: Ints) -> Ints:
    """The 1/60 s frame each pointer event is in as re-timing sends it: its own,
    or that of the re-timed key event before it when that went later (re-timing
    holds a pointer event behind it). `keys` are the rows of the key events,
    `paced` their re-timed times. Re-timed events give themselves back."""
    before = np.searchsorted(keys, np.arange(len(t)), "right") - 1
    held = np.where(before >= 0, paced[np.maximum(before, 0)] if len(paced) else 0, t)
    framed: Ints = np.maximum(t, held) // FRAME_NS
    return framed


def _distance(a: Ints, b: Ints, start: Ints, stop: Ints) -> npt.NDArray[np.float64]:
    """How far each point (a, b)[stop] is from (a, b)[start], in pixels."""
    across = (a[stop] - a[start]).astype(np.float64)
    down = (b[stop] - b[start]).astype(np.float64)
    distance: npt.NDArray[np.float64] = np.sqrt(across * across + down * down)
    return distance


def clicks(fr: Ints, kind: Ints, a: Ints, b: Ints, c: Ints) -> Found:
    """Clicks, multiple clicks and drags: each a press and the release of the same
    button (1 to 3) right after it among that button's events. Left clicks in
    quick succession (no focus change or exclusion between) are one action."""
    buttons = np.flatnonzero(
        ((kind == Kind.BUTTON_DOWN) | (kind == Kind.BUTTON_UP)) & (c >= 1) & (c <= 3)
    )
    if len(buttons) < 2:
        return empty()
    by_button = buttons[np.lexsort((buttons, c[buttons]))]
    pressed = kind[by_button] == Kind.BUTTON_DOWN
    # A press and a release with an excluded window between them are no action:
    # what happened in between is not known, and must not be made up.
    excluded = np.cumsum(np.isin(kind, _EXCLUSIONS))
    paired = (
        pressed[:-1]
        & ~pressed[1:]
        & (c[by_button[:-1]] == c[by_button[1:]])
        & (excluded[by_button[:-1]] == excluded[by_button[1:]])
    )
    downs, ups = by_button[:-1][paired], by_button[1:][paired]
    order = np.argsort(downs, kind="stable")
    downs, ups = downs[order], ups[order]
    n = len(downs)
    if n == 0:
        return empty()
    button = c[downs]
    drag = _distance(a, b, downs, ups) > DRAG_PX
    link = np.zeros(n, bool)
    if n > 1:
        left = (button == 1) & ~drag
        changes = np.cumsum((kind == Kind.FOCUS) | np.isin(kind, _EXCLUSIONS))
        link[1:] = (
            left[1:]
            & left[:-1]
            & (changes[downs[1:]] == changes[ups[:-1]])
            & ((fr[downs[1:]] - fr[ups[:-1]]) * FRAME_NS <= DOUBLE_CLICK_NS)
            & (_distance(a, b, downs[:-1], downs[1:]) <= DOUBLE_CLICK_PX)
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


def scrolls(fr: Ints, kind: Ints, a: Ints, b: Ints, c: Ints, d: Ints) -> Found:
    """Scroll steps in a row merged: same direction, less than SCROLL_GAP_NS apart, no
    button press, focus change or exclusion between them (moves and keys do not
    split a scroll: re-timing keeps their order against keys only within a frame)."""
    steps = np.flatnonzero((kind == Kind.SCROLL) & ((c != 0) | (d != 0)))
    if len(steps) == 0:
        return empty()
    breaks = np.cumsum(np.isin(kind, BREAKS))[steps]
    sx, sy, at = np.sign(c[steps]), np.sign(d[steps]), fr[steps]
    new = np.ones(len(steps), bool)
    new[1:] = (
        (sx[1:] != sx[:-1])
        | (sy[1:] != sy[:-1])
        | ((at[1:] - at[:-1]) * FRAME_NS >= SCROLL_GAP_NS)
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
        dx=_clipped(np.add.reduceat(c[steps], starts)),
        dy=_clipped(np.add.reduceat(d[steps], starts)),
    )
