"""A bare X client window for the capture tests.

Usage: python xwindow.py --class CLASS [--instance INSTANCE] --title TITLE

Creates and maps a 400x300 window with WM_CLASS (INSTANCE, CLASS) and the title
in both _NET_WM_NAME (UTF-8) and WM_NAME, prints its id as 0x... and a newline
once the server has mapped it, and lives until stdin closes.
"""

from __future__ import annotations

import argparse
import sys

from Xlib import X, Xatom
from Xlib.display import Display


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--class", dest="wm_class", required=True)
    parser.add_argument("--instance", default=None, help="defaults to the class in lower case")
    parser.add_argument("--title", required=True)
    args = parser.parse_args()
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
    window.set_wm_class(args.instance or args.wm_class.lower(), args.wm_class)
    window.set_wm_name(args.title)
    window.change_property(
        display.intern_atom("_NET_WM_NAME"),
        display.intern_atom("UTF8_STRING"),
        8,
        args.title.encode(),
    )
    # Accept focus the ICCCM way, so that window managers hand it over.
    window.set_wm_hints(flags=1, input=1)  # InputHint
    window.change_property(display.intern_atom("WM_PROTOCOLS"), Xatom.ATOM, 32, [])
    window.map()
    display.flush()
    while display.next_event().type != X.MapNotify:
        pass
    sys.stdout.write(f"{window.id:#x}\n")
    sys.stdout.flush()
    sys.stdin.read()
    display.close()


if __name__ == "__main__":
    main()
