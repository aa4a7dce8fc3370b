"""What recording does to the interpreter of the process it runs in (in the
tray, that process also holds the review window and everything it built),
and that it is all undone when recording stops."""

from __future__ import annotations

import gc
import sys
import weakref

from cleartrace.capture.hook_friendly import kind_to_hooks


class _Node:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_garbage_alive_when_recording_starts_is_collected_once_it_stops() -> None:
    before = (sys.getswitchinterval(), gc.get_threshold())
    held = _Node()
    gone = weakref.ref(held)
    with kind_to_hooks():
        assert sys.getswitchinterval() == 0.001
        assert gc.get_freeze_count() > 0
        del held
    gc.collect()
    assert gone() is None
    assert (sys.getswitchinterval(), gc.get_threshold()) == before
    assert gc.get_freeze_count() == 0


def test_garbage_made_while_recording_is_collected_as_usual() -> None:
    with kind_to_hooks():
        made = _Node()
        gone = weakref.ref(made)
        del made
        gc.collect()
        assert gone() is None


def test_recorders_in_one_process_share_it_until_the_last_stops() -> None:
    before = sys.getswitchinterval()
    with kind_to_hooks():
        with kind_to_hooks():
            pass
        assert sys.getswitchinterval() == 0.001
        assert gc.get_freeze_count() > 0
    assert sys.getswitchinterval() == before
