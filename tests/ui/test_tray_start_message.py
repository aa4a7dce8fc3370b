"""`cleartrace` (the tray) says on the terminal that it runs and where to find it."""

from __future__ import annotations

import os
import signal
import subprocess
import threading

from cleartrace.paths import Paths
from tests.support.cli import CLI


def test_the_tray_says_it_runs_and_where_its_icon_stands(private_home: Paths) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY"}}
    env["QT_QPA_PLATFORM"] = "offscreen"  # no system tray here: the status window stands in
    tray = subprocess.Popen(
        [*CLI, "tray"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    watchdog = threading.Timer(60, tray.kill)  # a tray that never says it is not left running
    watchdog.start()
    seen: list[str] = []
    try:
        assert tray.stderr is not None
        for line in tray.stderr:  # until the tray says it runs, or exits
            seen.append(line)
            if line.startswith("ClearTrace is running"):
                break
        tray.send_signal(signal.SIGTERM)
        _, rest = tray.communicate(timeout=60)
    finally:
        watchdog.cancel()
        if tray.poll() is None:
            tray.kill()
            tray.communicate()
    assert seen, rest
    assert seen[-1].startswith("ClearTrace is running"), "".join(seen) + rest
    assert "status window" in seen[-1]
    assert tray.returncode == 0, rest
