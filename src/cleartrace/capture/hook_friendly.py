"""An interpreter kind to hook callbacks, which wait for it while it runs
other threads' Python code.

While recording: the interpreter passes between threads every millisecond
(the default, 5 ms, is a callback's whole budget); what is alive once
recording starts (modules, the app's windows) is frozen out of garbage
collection, since a full collection walking it held every callback up for
tens of milliseconds; young collections come less often, and the middle
generation is collected while it is small. Garbage alive at
the start (after one collection) that is dropped while recording is freed
when recording stops, when all this is undone.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["kind_to_hooks"]

_SWITCH_S = 0.001
#: Container allocations between two young collections (700 by default: at
#: a burst's rate, one every few hundred events) ...
_YOUNG_GC = 10000
#: ... and young collections between two of the middle generation, which then
#: holds fewer objects to walk (10 by default: up to 100,000, ~8 ms measured).
_MIDDLE_GC = 2

_lock = threading.Lock()
_saved: list[tuple[float, tuple[int, int, int]]] = []  # while any recording runs
_running = [0]


@contextmanager
def kind_to_hooks() -> Iterator[None]:
    """The tuning above while the block runs (recorders in one process share it)."""
    with _lock:
        _running[0] += 1
        first = _running[0] == 1
        if first:
            _saved.append((sys.getswitchinterval(), gc.get_threshold()))
    try:
        if first:  # in the try: an interrupt half-way is undone too
            sys.setswitchinterval(_SWITCH_S)
            gc.collect()
            gc.freeze()
            young, _, old = gc.get_threshold()
            gc.set_threshold(max(young, _YOUNG_GC), _MIDDLE_GC, old)
        yield
    finally:
        with _lock:
            _running[0] -= 1
            if _running[0] == 0:
                interval, threshold = _saved.pop()
                gc.unfreeze()
                sys.setswitchinterval(interval)
                gc.set_threshold(*threshold)
