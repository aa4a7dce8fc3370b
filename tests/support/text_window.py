"""A real Qt text window (textfield.py) as its own process on a test display.

Used where a test needs what a person types into: the reconstruction tests
compare their rebuilt text with what the field shows; the end-to-end journey
runs two of them as two applications (each its own WM_CLASS) that save to a
file on Ctrl+S.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import SUPPORT

__all__ = ["TEXTFIELD", "TextField"]

TEXTFIELD = SUPPORT / "textfield.py"


class TextField:
    """textfield.py on `display` (Qt on xcb, whatever the suite's QT_QPA_PLATFORM);
    `window` is its X window id, `text()` ends it and returns its text."""

    def __init__(self, display: str, widget: str, app: str, *, save_to: Path | None = None) -> None:
        saving = ["--save-to", str(save_to)] if save_to is not None else []
        self.proc = subprocess.Popen(
            [sys.executable, str(TEXTFIELD), "--widget", widget, "--class", app, *saving],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"},
        )
        assert self.proc.stdout is not None
        self.window = self.proc.stdout.readline().strip()
        if not self.window:
            pytest.fail(f"textfield.py showed no window (exit status {self.proc.wait(10)})")

    def text(self) -> str:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        # Closing the window moves the focus to no application, and keys typed
        # up to LAG_MS before a focus change may have gone where it went: let
        # the last ones age past that first, as a person's pause would.
        time.sleep(0.3)
        self.proc.stdin.close()
        shown: str = json.loads(self.proc.stdout.readline())["text"]
        self.proc.wait(10)
        return shown

    def close(self) -> None:
        """End it by PID if `text()` did not."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
