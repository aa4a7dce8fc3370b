"""GUI-thread stalls while the in-process recorder runs at full speed.

Prints one JSON object. On a private Xvfb, the tray app's pieces run as in
`cleartrace`: a `Service` with its recorder (every category the policy asks
for consented, real X11 hooks), the `Runner`, the tray (its fallback status window), the "What is
captured now" window and the review window. A producer thread makes a
synthetic stream of `--rate` events per second on the X server (XTEST) in
an application's focused window, which the recorder's own hooks receive and
enqueue as a person's input, while the review window switches every 3 s
between two closed sessions of `--session-events` events each (decrypted, reconstructed
and scanned on the worker thread). A 5 ms timer on the GUI thread measures how late each tick
fires: the longest stall, and the 99th percentile. The run fails when the
recorder stored nothing of what was made, or stopped.

Usage: python benchmarks/gui_stall.py [--seconds S] [--rate N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from cleartrace.events import Kind, RawEvent
from cleartrace.paths import Paths, ensure_private_dirs
from cleartrace.service import Service

TICK_MS = 5
XWINDOW = Path(__file__).resolve().parents[1] / "tests" / "support" / "xwindow.py"


def _xvfb() -> tuple[subprocess.Popen[bytes], str]:
    r, w = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(w,),
        stderr=subprocess.DEVNULL,
    )
    number = b""
    while not number.endswith(b"\n"):
        number += os.read(r, 16)
    os.close(r)
    os.close(w)
    return proc, f":{number.decode().strip()}"


def _feed(display: str, rate: int, stop: threading.Event, fed: list[int]) -> None:
    """`rate` events per second in 10 ms bursts, shaped like a person's input, made on
    the X server (XTEST, its own connection): the recorder's own hooks receive,
    stamp and enqueue them as they do a person's."""
    from Xlib import XK, X
    from Xlib import display as xdisplay
    from Xlib.ext import xtest

    conn = xdisplay.Display(display)
    key = conn.keysym_to_keycode(XK.string_to_keysym("a"))
    n, x, down = 0, 0, False
    period = 0.01
    per_burst = max(1, rate // 100)
    next_at = time.monotonic()
    try:
        while not stop.is_set():
            for _ in range(per_burst):
                n += 1
                r = n % 10
                if r < 6:
                    x = (x + 3) % 1280
                    xtest.fake_input(conn, X.MotionNotify, x=x, y=400)
                elif r < 9:
                    down = not down
                    xtest.fake_input(conn, X.KeyPress if down else X.KeyRelease, key)
                else:
                    xtest.fake_input(conn, X.ButtonPress, 1)
                    xtest.fake_input(conn, X.ButtonRelease, 1)
                    n += 1
            conn.sync()
            next_at += period
            time.sleep(max(0.0, next_at - time.monotonic()))
        if down:
            xtest.fake_input(conn, X.KeyRelease, key)
            n += 1
        conn.sync()
    finally:
        conn.close()
    fed.append(n)


def _focused_window() -> subprocess.Popen[str]:
    """An application's window with the input focus (the capture tests' bare X client):
    input with no application focused is excluded, and would measure nothing."""
    proc = subprocess.Popen(
        [sys.executable, str(XWINDOW), "--class", "Gedit", "--title", "notes"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    window = proc.stdout.readline().strip()
    if not window:
        raise SystemExit(f"gui_stall benchmark: {XWINDOW} mapped no window")
    subprocess.run(["xdotool", "windowfocus", "--sync", window], check=True, timeout=30)
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--session-events", type=int, default=200_000)
    args = parser.parse_args()
    xvfb, display = _xvfb()
    os.environ["DISPLAY"] = display
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    window: subprocess.Popen[str] | None = None
    try:
        window = _focused_window()
        with tempfile.TemporaryDirectory(prefix="ct-bench-gui-") as tmp:
            result = _measure(Path(tmp), args.seconds, args.rate, args.session_events)
    finally:
        if window is not None:
            assert window.stdin is not None
            assert window.stdout is not None
            window.stdin.close()  # the window lives until its stdin closes
            window.wait(timeout=10)
            window.stdout.close()
        xvfb.terminate()
        xvfb.wait()
    print(json.dumps(result, indent=2))
    if result["failure"]:
        sys.exit(f"gui_stall benchmark: {result['failure']}")


def _closed_sessions(paths: Paths, n_events: int) -> list[str]:
    """Two closed sessions to review, as a morning's and an afternoon's."""
    from cleartrace.home import Home

    home = Home.open(paths, create=True)
    try:
        ids = []
        for _ in range(2):
            handle = home.store.begin_session(time.time_ns(), 0)
            events: list[RawEvent] = [(0, int(Kind.FOCUS), 0, 0, 0, 0, ("Gedit", None))]
            for i in range(1, n_events):
                t = i * 8_000_000
                if i % 10 < 8:
                    events.append((t, int(Kind.MOVE), i % 1280, 400, 0, 0, None))
                else:
                    kind = Kind.KEY_DOWN if i % 10 == 8 else Kind.KEY_UP
                    events.append((t, int(kind), 0x61 + i % 26, 0, 0, 0, None))
            for start in range(0, len(events), 20_000):
                home.store.append_chunk(handle, events[start : start + 20_000])
            home.store.end_session(handle, time.time_ns())
            ids.append(handle.id)
        return ids
    finally:
        home.close()


def _measure(home: Path, seconds: float, rate: int, session_events: int) -> dict[str, Any]:
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from cleartrace.ui.captured_now import CapturedNowWindow
    from cleartrace.ui.review import ReviewWindow
    from cleartrace.ui.runner import Runner
    from cleartrace.ui.tray import Tray

    os.environ["CLEARTRACE_HOME"] = str(home / "home")
    os.environ["XDG_RUNTIME_DIR"] = str(home / "run")
    os.environ.setdefault("CLEARTRACE_KEYSTORE", "file")
    (home / "run").mkdir(mode=0o700)
    paths = Paths.from_env()
    ensure_private_dirs(paths)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    to_review = _closed_sessions(paths, session_events)
    service = Service(paths)
    # Every category the installed policy asks for (giving one it does not ask for is
    # refused); this starts the recorder.
    service.give(list(service.policy.categories))
    service.runtime.running()  # raises if the recorder did not start
    runner = Runner(service)
    tray = Tray(runner, use_tray=False)
    tray.start()
    captured = CapturedNowWindow(runner)
    captured.show()
    review = ReviewWindow(runner)
    review.show()

    late: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.nsecsElapsed()]

    def tick() -> None:
        now = clock.nsecsElapsed()
        late.append(max(0.0, (now - last[0]) / 1e6 - TICK_MS))
        last[0] = now

    timer = QTimer()
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)
    reloads = QTimer()
    reloads.setInterval(3000)
    turn = [0]

    def switch() -> None:
        turn[0] += 1
        review.table.select_id(to_review[turn[0] % 2])

    reloads.timeout.connect(switch)

    stop, fed = threading.Event(), []
    producer = threading.Thread(target=_feed, args=(os.environ["DISPLAY"], rate, stop, fed))
    producer.start()
    timer.start()
    reloads.start()
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()
    stop.set()
    producer.join()
    timer.stop()
    reloads.stop()
    snapshot = service.snapshot()
    # Events per category; a marker of excluded input is no event kept.
    stored = sum(n for k, n in snapshot.session_counts.items() if k != "excluded_markers")
    # What went wrong, if anything: a benchmark of a recorder that stopped measures nothing.
    failure = snapshot.recorder_error or (
        None if snapshot.recorder is not None else f"the recorder is {snapshot.state.value}"
    )
    if failure is None and stored == 0:
        failure = f"the recorder stored none of the {fed[0] if fed else 0} events made"
    done = QEventLoop()
    tray.finished.connect(done.quit)
    QTimer.singleShot(30_000, done.quit)
    tray.quit()
    done.exec()
    # Qt deletes these, not Python's garbage collector at some later moment.
    for widget in (captured, review):
        widget.close()
        widget.deleteLater()
    for obj in (timer, reloads, tray):
        obj.deleteLater()
    settle = QEventLoop()
    QTimer.singleShot(200, settle.quit)
    settle.exec()
    app.closeAllWindows()
    late.sort()
    return {
        "benchmark": "gui_stall",
        "seconds": seconds,
        "rate_events_per_s": rate,
        "events_fed": fed[0] if fed else 0,
        "events_stored_while_measuring": stored,  # moves coalesced to 120 Hz
        "review_loads": turn[0],
        "review_session_events": session_events,
        "ticks": len(late),
        "tick_ms": TICK_MS,
        "stall_max_ms": round(late[-1], 1) if late else None,
        "stall_p99_ms": round(late[int(len(late) * 0.99) - 1], 1) if late else None,
        "stall_median_ms": round(statistics.median(late), 2) if late else None,
        "failure": failure,
    }


if __name__ == "__main__":
    main()
