"""A bare X client window for tests: a given WM_CLASS and title, until stdin closes.

Usage: python xwindow.py CLASS TITLE   (prints the window id as 0x… once mapped)
"""

from __future__ import annotations

import sys

from Xlib import X, Xatom
from Xlib.display import Display


def main() -> None:
    wm_class, title = sys.argv[1], sys.argv[2]
    display = Display()
    screen = display.screen()
    window = screen.root.create_window(
        50,
        50,
        400,
        300,
        0,
        screen.root_depth,
        X.InputOutput,
        X.CopyFromParent,
        background_pixel=screen.white_pixel,
        event_mask=X.StructureNotifyMask,
    )
    window.set_wm_class(wm_class.lower(), wm_class)
    window.set_wm_name(title)
    window.change_property(
        display.intern_atom("_NET_WM_NAME"),
        display.intern_atom("UTF8_STRING"),
        8,
        title.encode(),
    )
    window.change_property(display.intern_atom("WM_PROTOCOLS"), Xatom.ATOM, 32, [])
    window.map()
    display.flush()
    while display.next_event().type != X.MapNotify:
        pass
    sys.stdout.write(f"{window.id:#x}\n")
    sys.stdout.flush()
    sys.stdin.read()


if __name__ == "__main__":
    main()
