"""A stand-in for pynput that drives the X11 backend's own callbacks, and the
person-shaped event streams it plays (`benchmarks/pipeline.py`).

`Replay` is a `capture.base.Backend`: its hooks are `capture._x11`'s
`key_callbacks` and `mouse_callbacks`, called inside the backend's own
`_stamping` wrapper with pynput's own key and button objects (importing
pynput needs a display); its focus watcher answers every request for a
watermark at once, on a thread of its own, stamped with the server's clock.
"""

from __future__ import annotations

import random
import threading
import time
from array import array
from collections.abc import Callable
from itertools import islice
from typing import Any

from cleartrace.capture._x11 import Switch, _stamping, key_callbacks, mouse_callbacks
from cleartrace.capture.base import Sink
from cleartrace.capture.timeline import FocusedWindow, FocusTimeline
from cleartrace.events import Kind

MS = 1_000_000
APPS = ["firefox", "Gedit", "code", "Xterm", "libreoffice-calc"]
KEY_DOWN, MOVE, BUTTON_DOWN, SCROLL = 1, 3, 4, 6  # Kind, as the stand-in dispatches them
FOCUS = int(Kind.FOCUS)


class Stream:
    """A person-shaped event stream as columns (no per-event objects for the
    garbage collector to walk): delivery stamp (ns), server time (ms), Kind,
    four numbers, and a focus change's application index in `a`."""

    def __init__(self) -> None:
        self.t, self.x, self.kind = array("q"), array("q"), array("b")
        self.a, self.b, self.c, self.d = array("q"), array("q"), array("q"), array("q")

    def __len__(self) -> int:
        return len(self.t)

    def add(self, t: int, x: int, kind: int, a: int, b: int = 0, c: int = 0, d: int = 0) -> None:
        for col, v in zip(
            (self.t, self.x, self.kind, self.a, self.b, self.c, self.d),
            (t, x, kind, a, b, c, d),
            strict=True,
        ):
            col.append(v)

    @property
    def inputs(self) -> int:
        return len(self) - self.kind.count(FOCUS)


def synthetic_stream(n: int, seed: int = 7, *, t0_ns: int = 0, x0_ms: int = 1000) -> Stream:
    """`n` events shaped like a person's input: server times in whole ms from
    `x0_ms`, each delivered 0-999 µs (and some ns) after it, from `t0_ns`."""
    rnd = random.Random(seed)
    out = Stream()
    ms, x, y = 0, 640, 400

    def put(kind: int, a: int, b: int = 0, c: int = 0, d: int = 0) -> None:
        out.add(t0_ns + ms * MS + rnd.randrange(1_000_000), x0_ms + ms, kind, a, b, c, d)

    while len(out) < n:
        if len(out) % 500 == 0:
            put(FOCUS, rnd.randrange(len(APPS)), rnd.randint(1, 40))
            continue
        r = rnd.random()
        if r < 0.60:
            ms += rnd.randint(10, 14)  # over a 120 Hz bin apart: every move is kept
            x = max(0, min(1919, x + rnd.randint(-6, 6)))
            y = max(0, min(1079, y + rnd.randint(-4, 4)))
            put(int(Kind.MOVE), x, y)
        elif r < 0.90:
            key = rnd.choice(b"etaoinshrdlu etaoin ") if rnd.random() < 0.9 else 0xFF08
            ms += rnd.randint(40, 160)
            put(int(Kind.KEY_DOWN), key)
            ms += rnd.randint(30, 90)
            put(int(Kind.KEY_UP), key)
        elif r < 0.97:
            ms += rnd.randint(100, 600)
            put(int(Kind.BUTTON_DOWN), x, y, 1)
            ms += rnd.randint(60, 120)
            put(int(Kind.BUTTON_UP), x, y, 1)
        else:
            ms += rnd.randint(20, 80)
            put(int(Kind.SCROLL), x, y, 0, rnd.choice((-1, 1)))
    for col in (out.t, out.x, out.kind, out.a, out.b, out.c, out.d):
        del col[n:]
    return out


class XEvent:
    """What the stand-in for pynput dispatches: an X event, reused."""

    __slots__ = ("a", "b", "c", "d", "how", "key", "time")

    def __init__(self) -> None:
        self.time = self.how = self.a = self.b = self.c = self.d = 0
        self.key: Any = None


def window(app: int, doc: int) -> FocusedWindow:
    name = APPS[app]
    return FocusedWindow(name, f"{name} document {doc}", ((name, name.lower()),))


class Replay:
    """A `capture.base.Backend` whose hooks are the X11 backend's callbacks,
    called through its stamping wrapper by `dispatch`, and whose focus
    watcher confirms every watermark at once."""

    name = "replay"

    def __init__(
        self, clock: Callable[[], int], mono_of: Callable[[int], int], window: FocusedWindow
    ) -> None:
        from pynput.keyboard import Key, KeyCode
        from pynput.mouse import Button

        self._clock, self._mono_of = clock, mono_of
        self._keys: dict[int, Any] = {k: KeyCode.from_char(chr(k)) for k in range(0x20, 0x7F)}
        self._keys[0xFF08] = Key.backspace
        self._button = Button.left
        self._timeline: FocusTimeline | None = None
        self.window = window
        self._server, self._real = 0, time.monotonic_ns() // MS
        self._asked = threading.Event()
        self._watcher = threading.Thread()
        self._answered = threading.Condition()
        self._requests = self._answers = 0
        self._key_hook: Any = None
        self._mouse_hook: Any = None
        self.event = XEvent()
        self.dispatch_key: Callable[[Any, Any, bool], None] = self._nothing
        self.dispatch_mouse: Callable[[Any, Any, bool], None] = self._nothing

    @staticmethod
    def _nothing(display: Any, event: Any, injected: bool) -> None:
        pass

    # -- the hooks ---------------------------------------------------------------------

    def start_keyboard(self, sink: Sink) -> None:
        switch, stamp = Switch(), [None]
        on_press, on_release = key_callbacks(sink.queue.put, switch, stamp, self._clock)
        keys = self._keys

        def handle(display: Any, event: Any, injected: bool) -> None:
            (on_press if event.how == KEY_DOWN else on_release)(keys[event.a])

        self._key_hook = switch
        self.dispatch_key = _stamping(handle, stamp)

    def stop_keyboard(self) -> None:
        if self._key_hook is not None:
            self._key_hook.on = False
            self._key_hook, self.dispatch_key = None, self._nothing

    def start_mouse(self, sink: Sink, *, moves: bool, clicks: bool, scrolls: bool) -> None:
        switch, stamp = Switch(), [None]
        on_move, on_click, on_scroll = mouse_callbacks(sink.queue.put, switch, stamp, self._clock)
        button = self._button

        def handle(display: Any, event: Any, injected: bool) -> None:
            how = event.how
            if how == MOVE:
                on_move(event.a, event.b)
            elif how == SCROLL:
                on_scroll(event.a, event.b, event.c, event.d)
            else:
                on_click(event.a, event.b, button, how == BUTTON_DOWN)

        self._mouse_hook = switch
        self.dispatch_mouse = _stamping(handle, stamp)

    def stop_mouse(self) -> None:
        if self._mouse_hook is not None:
            self._mouse_hook.on = False
            self._mouse_hook, self.dispatch_mouse = None, self._nothing

    # -- the focus watcher -------------------------------------------------------------

    def start_focus(self, timeline: FocusTimeline, *, titles: bool) -> None:
        """Watch on a thread of its own, as the X11 focus watcher does: it
        answers each request for a watermark at once."""
        self._timeline, self._asked = timeline, threading.Event()
        timeline.attach(self._ask)
        timeline.untimed(self.window)
        self._confirm(timeline, final=False)
        self._watcher = threading.Thread(target=self._watch, args=(timeline, self._asked))
        self._watcher.start()

    def _ask(self) -> None:
        with self._answered:
            self._requests += 1
        self._asked.set()

    def _watch(self, timeline: FocusTimeline, asked: threading.Event) -> None:
        while True:
            asked.wait()
            asked.clear()
            if self._timeline is not timeline:
                return
            with self._answered:
                n = self._requests
            self._confirm(timeline, final=False)
            with self._answered:
                self._answers = n
                self._answered.notify_all()

    def settle(self) -> None:
        """Wait until every watermark asked for so far is answered, as it is
        in the 200 ms between two flushes of a real recorder."""
        with self._answered:
            self._answered.wait_for(lambda: self._answers >= self._requests, 1.0)

    def _confirm(self, timeline: FocusTimeline, *, final: bool) -> None:
        """The answer to a probe: stamped the server's time now."""
        token = timeline.probe_token()
        ms = self._server_now()
        timeline.confirm(ms, token, self._mono_of(ms), final=final)

    def _server_now(self) -> int:
        """The server's clock: the newest event's time, or as much later as
        real time has passed since it was last read (it runs when nothing
        is dispatched, as a real server's does)."""
        real = time.monotonic_ns() // MS
        self._server = max(self.event.time, self._server + real - self._real)
        self._real = real
        return self._server

    def focus(self, server_ms: int, window: FocusedWindow) -> None:
        self.window, self.event.time = window, server_ms
        if self._timeline is not None:
            self._timeline.timed(server_ms, window)

    def stop_focus(self) -> None:
        """A final watermark, after the input hooks stopped, then the thread ends."""
        timeline, self._timeline = self._timeline, None
        if timeline is not None:
            self._asked.set()
            self._watcher.join()
            self._confirm(timeline, final=True)
            timeline.detach(self._ask, final=True)

    def focused(self) -> tuple[str | None, str | None]:
        w = self.window
        return (None, None) if w is None else (w.app, w.title)

    def hooks(self) -> list[str]:
        out = ["keyboard"] if self._key_hook is not None else []
        if self._mouse_hook is not None:
            out += ["mouse.move", "mouse.click", "mouse.scroll"]
        return out + (["focus", "focus.titles"] if self._timeline is not None else [])

    def screen_locked(self) -> bool:
        return False

    def close(self) -> None:
        self.stop_keyboard()
        self.stop_mouse()
        self.stop_focus()


def play(backend: Replay, s: Stream, start: int = 0, stop: int | None = None) -> None:
    """Dispatch events `start:stop` of `s` as pynput would (a focus change as
    the focus watcher would): the stand-in's own work kept to a minimum."""
    event, key, mouse = backend.event, backend.dispatch_key, backend.dispatch_mouse
    events = zip(s.x, s.kind, s.a, s.b, s.c, s.d, strict=True)
    for x, kind, a, b, c, d in islice(events, start, stop):
        if kind == FOCUS:
            backend.focus(x, window(a, b))
            continue
        event.time, event.how, event.a, event.b, event.c, event.d = x, kind, a, b, c, d
        (key if kind <= 2 else mouse)(None, event, False)


def play_timed(backend: Replay, s: Stream, took: array[int], start: int, stop: int) -> None:
    """`play`, each dispatch timed into `took` (ns; 0 for a focus change)."""
    event, key, mouse = backend.event, backend.dispatch_key, backend.dispatch_mouse
    perf = time.perf_counter_ns
    events = zip(s.x, s.kind, s.a, s.b, s.c, s.d, strict=True)
    for i, (x, kind, a, b, c, d) in enumerate(islice(events, start, stop), start):
        if kind == FOCUS:
            backend.focus(x, window(a, b))
            continue
        event.time, event.how, event.a, event.b, event.c, event.d = x, kind, a, b, c, d
        dispatch = key if kind <= 2 else mouse
        t = perf()
        dispatch(None, event, False)
        took[i] = perf() - t
