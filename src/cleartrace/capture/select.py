"""Choosing the capture backend for this platform (`CLEARTRACE_BACKEND` overrides)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from cleartrace.capture.base import Backend
from cleartrace.errors import DisplayUnavailable, UsageError

__all__ = ["BACKENDS", "backend"]

BACKENDS = ("x11",)


def backend(env: Mapping[str, str] | None = None) -> Backend:
    """A new, idle backend; nothing touches the display until a hook starts.

    Raises:
        UsageError: CLEARTRACE_BACKEND names an unknown backend.
        DisplayUnavailable: no backend exists for this platform yet.
    """
    env = os.environ if env is None else env
    name = env.get("CLEARTRACE_BACKEND") or ("x11" if sys.platform.startswith("linux") else "")
    if name == "x11":
        from cleartrace.capture._x11 import X11Backend

        return X11Backend()
    if not name:
        raise DisplayUnavailable(f"capture on {sys.platform} is not supported yet")
    raise UsageError(f"unknown CLEARTRACE_BACKEND '{name}'; known: {', '.join(BACKENDS)}")
