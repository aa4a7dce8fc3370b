"""A bare X client window for the capture tests.

Usage: python xwindow.py [--class CLASS] [--instance INSTANCE] --title TITLE
       [--keys-to FILE] [--frame CLASS] [--transient-for WID] [--grab-root]

Creates and maps a 400x300 window with WM_CLASS (INSTANCE, CLASS) (none
without --class) and the title in both _NET_WM_NAME (UTF-8) and WM_NAME,
prints its id as 0x... and a newline once the server has mapped it, and lives
until stdin closes.

--keys-to appends one line per KeyPress the window receives, so a test can
prove where its keys went. --frame puts the window inside a parent window
with a class of its own, as a reparenting window manager's frame, and marks
it with WM_STATE as such a manager does. --transient-for makes it a popup of
another window. --grab-root grabs the keyboard on the root window, as a
screen locker does (the keys it receives are written to --keys-to too).
"""

from __future__ import annotations

import argparse
import os
import select
import sys
from pathlib import Path
from typing import Any

from Xlib import X, Xatom
from Xlib.display import Display


def _client(display: Display, args: argparse.Namespace) -> Any:
    screen = display.screen()
    parent = screen.root
    if args.frame:
        parent = screen.root.create_window(
            50, 50, 400, 300, 0, screen.root_depth, X.InputOutput, X.CopyFromParent,
            background_pixel=screen.black_pixel,
        )  # fmt: skip
        parent.set_wm_class(args.frame.lower(), args.frame)
    window = parent.create_window(
        0 if args.frame else 50,
        0 if args.frame else 50,
        400,
        300,
        0,
        screen.root_depth,
        X.InputOutput,
        X.CopyFromParent,
        background_pixel=screen.white_pixel,
        event_mask=X.StructureNotifyMask | X.KeyPressMask,
    )
    if args.wm_class is not None:
        window.set_wm_class(args.instance or args.wm_class.lower(), args.wm_class)
    if args.frame:  # what a window manager sets on the client it manages
        state = display.intern_atom("WM_STATE")
        window.change_property(state, state, 32, [1, 0])  # NormalState, no icon
    if args.transient_for:
        window.change_property(
            display.intern_atom("WM_TRANSIENT_FOR"), Xatom.WINDOW, 32, [int(args.transient_for, 16)]
        )
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
    if args.frame:
        parent.map()
    return window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--class", dest="wm_class", default=None)
    parser.add_argument("--instance", default=None, help="defaults to the class in lower case")
    parser.add_argument("--title", required=True)
    parser.add_argument("--keys-to", default=None)
    parser.add_argument("--frame", default=None)
    parser.add_argument("--transient-for", default=None)
    parser.add_argument("--grab-root", action="store_true")
    args = parser.parse_args()
    display = Display()
    window = _client(display, args)
    display.flush()
    while display.next_event().type != X.MapNotify:
        pass
    display.sync()  # the frame is mapped too: the window can take the focus
    if args.grab_root:
        root = display.screen().root
        grabbed = root.grab_keyboard(False, X.GrabModeAsync, X.GrabModeAsync, X.CurrentTime)
        if grabbed != X.GrabSuccess:
            sys.exit(f"cannot grab the keyboard ({grabbed})")
    sys.stdout.write(f"{window.id:#x}\n")
    sys.stdout.flush()
    keys = Path(args.keys_to) if args.keys_to else None
    while True:
        readable, _, _ = select.select([sys.stdin, display.fileno()], [], [])
        if sys.stdin in readable and not os.read(sys.stdin.fileno(), 4096):
            break
        while display.pending_events():
            event = display.next_event()
            if event.type == X.KeyPress and keys is not None:
                with keys.open("a") as fh:
                    fh.write(f"{event.time}\n")
    display.close()


if __name__ == "__main__":
    main()
