"""The `cleartrace` program: the CLI, with the tray app as its default command.

The one module above both the CLI and the UI (the import-linter `layers`
contract puts it on top): the CLI knows the tray only as the callable given to
it here, so no command can reach Qt, and Qt is loaded only when the tray is
asked for — every other command starts without it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Sequence

from cleartrace import cli
from cleartrace.errors import DisplayUnavailable

__all__ = ["leave_if_threads_remain", "main", "start_tray"]

log = logging.getLogger(__name__)

#: How long threads still running after the tray returned get to end.
STRAGGLER_GRACE_S = 2.0


def start_tray() -> int:
    """Start the tray app and return its exit code.

    Raises:
        DisplayUnavailable: Qt cannot load here (a missing system library).
    """
    try:
        from cleartrace.ui.app import main as tray_main
    except ImportError as exc:
        raise DisplayUnavailable(
            f"cannot start the tray: Qt does not load ({exc}); reinstall ClearTrace "
            "or install the missing system library"
        ) from exc
    code = tray_main([])
    leave_if_threads_remain(code)
    return code


def leave_if_threads_remain(code: int, grace: float = STRAGGLER_GRACE_S) -> None:
    """Exit with `code` at once, without finalising the interpreter, if a thread
    other than the main one still runs after `grace` seconds; else return.

    The tray joins every thread it starts before it returns, each with a
    timeout so that a hung X server or keychain cannot keep a quit waiting. A
    thread that outlived its timeout would run Python code while the
    interpreter finalises, which crashes it (`Fatal Python error`, exit status
    134) instead of quitting. Everything that matters is closed by then (the
    session flushed, the store closed), so only the log and stdio are flushed.
    """
    deadline = time.monotonic() + grace
    for thread in threading.enumerate():
        if thread is not threading.main_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
    left = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if not left:
        return
    log.warning("threads still running at exit (%s): leaving without finalising", ", ".join(left))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `cleartrace ARGS`; with no command, the tray app."""
    return cli.main(argv, tray=start_tray)
