"""What an action happened in: its focus segment (episode, window) and its monitor.

An action belongs to the latest FOCUS event, and the latest screen layout,
before its first event. Re-timing (upload/retiming.py) keeps that order: a
pointer event is never put before the event that preceded it, and focus
and screen events keep their place among the keys.

Coordinates are normalised to the monitor holding the point in the latest
screen layout: (x - left) / width and (y - top) / height, in [0, 1); the
first monitor listed (the primary) wins where monitors overlap (mirrored
outputs). A layout that lists no monitor is one monitor the size of the root
window. No layout, or a point on no monitor: null.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from cleartrace.events import Kind
from cleartrace.org.action_found import Bools, Ints

__all__ = ["Normalised", "latest", "normalise"]

Floats = npt.NDArray[np.float64]


def latest(kind: Ints, of: Kind, first: Ints) -> tuple[Ints, Ints]:
    """The rows of the events of kind `of`, and for each action the number of the
    latest of them before its first event (-1: none)."""
    rows = np.flatnonzero(kind == of)
    return rows, np.searchsorted(rows, first, "right") - 1


class Normalised(NamedTuple):
    x: Floats
    y: Floats
    known: Bools  # on a monitor of a known layout


def normalise(
    kind: Ints, a: Ints, b: Ints, c: Ints, d: Ints, screens: Ints, screen: Ints, x: Ints, y: Ints
) -> Normalised:
    """Each point (x, y) relative to its monitor in layout `screen` (a number among
    the SCREEN rows `screens`; -1 for none)."""
    n = len(x)
    left, top = np.zeros(n, np.int64), np.zeros(n, np.int64)
    width, height = np.zeros(n, np.int64), np.zeros(n, np.int64)
    known = np.zeros(n, bool)
    has = screen >= 0
    monitors = np.flatnonzero(kind == Kind.MONITOR)
    owner = np.searchsorted(screens, monitors, "right") - 1
    lo = np.searchsorted(owner, np.arange(len(screens)), "left")
    hi = np.searchsorted(owner, np.arange(len(screens)), "right")
    s = np.maximum(screen, 0)
    count = np.where(has, (hi - lo)[s] if len(screens) else 0, 0)
    # A layout without monitors: the root window (SCREEN's b, c).
    root = has & (count == 0)
    if root.any():
        rows = screens[s[root]]
        width[root], height[root] = b[rows], c[rows]
        known[root] = (width[root] > 0) & (height[root] > 0)
        known[root] &= (x[root] >= 0) & (x[root] < width[root]) & (y[root] >= 0)
        known[root] &= y[root] < height[root]
    for k in range(int(count.max(initial=0))):
        m = monitors[np.minimum(lo[s] + k, len(monitors) - 1)] if len(monitors) else s
        mx, my, mw, mh = a[m], b[m], c[m], d[m]
        hit = (
            has & ~known & (k < count) & (mw > 0) & (mh > 0)
            & (x >= mx) & (x < mx + mw) & (y >= my) & (y < my + mh)
        )  # fmt: skip
        left[hit], top[hit], width[hit], height[hit] = mx[hit], my[hit], mw[hit], mh[hit]
        known |= hit
    safe_w, safe_h = np.where(known, width, 1), np.where(known, height, 1)
    return Normalised((x - left) / safe_w, (y - top) / safe_h, known)
