"""The context input happens in: the screen layout and the keyboard layout.

The focus watcher reads both from the display at its start and whenever the
server says they changed (`capture/_x11_context.py`) and reports them here;
the writer puts them in the stored stream (`capture/pipeline.Writer`): the
whole context first in every session, so that each session stands alone,
then each change at the time it happened. Only kinds the recorder allows
(`allow`: their category is recorded now) are ever handed out; a kind
allowed again gets the current state at once, since the stream has not
said it for a while. A change is handed out only once the writer has decided
where input went up to its time (`take(until=...)`): a layout switched right
after the focus moved to an excluded window then comes after that
exclusion's marker, never before it.

Shared by the focus watcher's thread, the writer and the recorder, so every
method takes the lock; all of them are quick (no I/O).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from cleartrace.categories import Category
from cleartrace.events import CATEGORY_OF_KIND, Kind, RawEvent, category_counts

__all__ = ["CONTEXT_KINDS", "INPUT_KINDS", "Context", "ScreenItem", "status_counts"]

#: (kind, a, b, c, d) of one SCREEN or MONITOR event (see `cleartrace.events`).
ScreenItem = tuple[int, int, int, int, int]

_SCREEN, _LAYOUT = int(Kind.SCREEN), int(Kind.LAYOUT)
#: The screen and keyboard layouts: what input happened in, not input.
CONTEXT_KINDS = frozenset({int(Kind.SCREEN), int(Kind.MONITOR), _LAYOUT})
#: What a person did, as against what it happened in (focus, screen, layout).
INPUT_KINDS = frozenset(
    int(k)
    for k in (Kind.KEY_DOWN, Kind.KEY_UP, Kind.MOVE, Kind.BUTTON_DOWN, Kind.BUTTON_UP, Kind.SCROLL)
)


def status_counts(by_kind: Mapping[int, int]) -> dict[str, int]:
    """A recorder's counts per category, as its status reports them: the
    screen and keyboard layouts apart, under "context", so that a category's
    count is what the person did (no click is counted for a screen layout)."""
    counts = category_counts({k: n for k, n in by_kind.items() if k not in CONTEXT_KINDS})
    if context := sum(n for k, n in by_kind.items() if k in CONTEXT_KINDS):
        counts["context"] = context
    return counts


class Context:
    """The latest screen and keyboard layout, and the changes not written yet."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._screen: tuple[ScreenItem, ...] = ()
        self._layout: tuple[int, str | None] | None = None
        self._pending: list[RawEvent] = []
        self._allowed: frozenset[int] = frozenset()
        # The layouts as of the changes handed out (what a session opens with).
        self._given_screen: tuple[ScreenItem, ...] = ()
        self._given_layout: tuple[int, str | None] | None = None

    # -- the watcher's side ------------------------------------------------------

    def screen(self, items: Iterable[ScreenItem], t_ns: int) -> None:
        """The screen layout is `items` (SCREEN, then its MONITORs) since monotonic `t_ns`."""
        items = tuple(items)
        with self._lock:
            if items != self._screen:
                self._screen = items
                self._queue(self._screen_events(t_ns))

    def layout(self, group: int, name: str | None, t_ns: int) -> None:
        """The keyboard is in XKB group `group`, layout `name`, since monotonic `t_ns`."""
        with self._lock:
            if (group, name) != self._layout:
                self._layout = (group, name)
                self._queue(self._layout_events(t_ns))

    # -- the recorder's side -------------------------------------------------------

    def allow(self, categories: frozenset[Category], t_ns: int) -> None:
        """Only events of `categories` are handed out from now on; a kind
        allowed anew gets the current state, stamped `t_ns`."""
        kinds = frozenset(int(k) for k, c in CATEGORY_OF_KIND.items() if c in categories)
        with self._lock:
            new = kinds - self._allowed
            self._allowed = kinds
            self._pending = [ev for ev in self._pending if ev[1] in kinds]
            if new:
                current = [*self._screen_events(t_ns), *self._layout_events(t_ns)]
                self._pending += (ev for ev in current if ev[1] in new)

    # -- the writer's side ---------------------------------------------------------

    @property
    def allowed(self) -> frozenset[int]:
        """The kinds handed out now (their category is recorded)."""
        with self._lock:
            return self._allowed

    @property
    def pending(self) -> bool:
        """Whether a change waits to be handed out."""
        with self._lock:
            return bool(self._pending)

    def take(self, opening_at: int | None = None, until: int | None = None) -> list[RawEvent]:
        """The changes not handed out yet stamped up to monotonic `until` (all
        without it), in time order; later ones wait for a later take. With
        `opening_at` (a session's first write) the whole context in force at
        `until` instead, stamped `opening_at`: never earlier, since the session
        did not exist before it."""
        with self._lock:
            pending = self._pending
            if until is None:
                given, self._pending = pending, []
            else:
                given = [ev for ev in pending if ev[0] <= until]
                self._pending = [ev for ev in pending if ev[0] > until]
            given.sort(key=_time)
            for ev in given:
                self._hand_out(ev)
            if opening_at is None:
                return given
            self._known_from_start()
            current = [
                *_screen_events(self._given_screen, opening_at),
                *_layout_events(self._given_layout, opening_at),
            ]
            return [ev for ev in current if ev[1] in self._allowed]

    # -- internals (under the lock) ------------------------------------------------

    def _queue(self, events: list[RawEvent]) -> None:
        self._pending += (ev for ev in events if ev[1] in self._allowed)

    def _known_from_start(self) -> None:
        """Hand out the first state read of a layout none was handed out of
        yet: read when the watcher started, it held before the session opened,
        however late it was reported."""
        unknown = {True: self._given_layout is None, False: not self._given_screen}
        first: dict[bool, int] = {}
        rest = []
        for ev in sorted(self._pending, key=_time):
            group = ev[1] == _LAYOUT
            if unknown[group] and first.setdefault(group, ev[0]) == ev[0]:
                self._hand_out(ev)
            else:
                rest.append(ev)
        self._pending = rest

    def _hand_out(self, ev: RawEvent) -> None:
        """Fold a change handed out into the state a session opens with."""
        kind = ev[1]
        if kind == _LAYOUT:
            self._given_layout = (ev[2], None if ev[6] is None else ev[6][0])
        elif kind == _SCREEN:
            self._given_screen = (ev[1:6],)
        else:
            self._given_screen += (ev[1:6],)

    def _screen_events(self, t_ns: int) -> list[RawEvent]:
        return _screen_events(self._screen, t_ns)

    def _layout_events(self, t_ns: int) -> list[RawEvent]:
        return _layout_events(self._layout, t_ns)


def _time(event: RawEvent) -> int:
    return event[0]


def _screen_events(screen: tuple[ScreenItem, ...], t_ns: int) -> list[RawEvent]:
    return [(t_ns, kind, a, b, c, d, None) for kind, a, b, c, d in screen]


def _layout_events(layout: tuple[int, str | None] | None, t_ns: int) -> list[RawEvent]:
    if layout is None:
        return []
    group, name = layout
    return [(t_ns, _LAYOUT, group, 0, 0, 0, (name, None))]
