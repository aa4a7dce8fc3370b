"""The screen and keyboard layout of a test X server, changed as a person's
desktop changes them, and the context events a recording exported."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.support.cli import ct

__all__ = ["exported_events", "lock_next_group", "run_x", "set_dpi", "split_screen"]


def run_x(*argv: str) -> None:
    """An X utility (xrandr, setxkbmap, xrdb) on the test's display; it must succeed."""
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


def set_dpi(dpi: int) -> None:
    """Xft.dpi in the root window's RESOURCE_MANAGER, as a desktop's scale setting does."""
    subprocess.run(["xrdb", "-merge"], input=f"Xft.dpi: {dpi}\n", text=True, check=True, timeout=30)


def split_screen() -> None:
    """Two RandR 1.5 monitors side by side on the 1280x800 screen, then the
    output made primary: setting monitors alone sends no notification on Xvfb,
    the output change does (as a real monitor plugged in would)."""
    run_x("xrandr", "--setmonitor", "left", "640/170x800/212+0+0", "screen")
    run_x("xrandr", "--setmonitor", "right", "640/170x800/212+640+0", "none")
    run_x("xrandr", "--output", "screen", "--primary")


def lock_next_group() -> None:
    """Shift+Alt through XTEST, which `setxkbmap -option grp:alt_shift_toggle`
    makes the next-group key (xdotool would restore the group after its keys)."""
    from Xlib import XK, X
    from Xlib.display import Display
    from Xlib.ext import xtest

    display = Display()
    try:
        shift = display.keysym_to_keycode(XK.XK_Shift_L)
        alt = display.keysym_to_keycode(XK.XK_Alt_L)
        for kind, code in ((X.KeyPress, shift), (X.KeyPress, alt)):
            xtest.fake_input(display, kind, code)
        for kind, code in ((X.KeyRelease, alt), (X.KeyRelease, shift)):
            xtest.fake_input(display, kind, code)
        display.sync()
    finally:
        display.close()


def exported_events(tmp_path: Path) -> list[list[dict[str, Any]]]:
    """Every session's events, through `cleartrace export` (sessions in order)."""
    out = tmp_path / "export.json"
    ct("export", "--out", str(out))
    data = json.loads(out.read_text(encoding="utf-8"))
    return [session["events"] for session in data["sessions"]]
