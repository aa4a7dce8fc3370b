"""`cleartrace` / `cleartrace tray`: the tray app, wired together.

Order of events: make sure Qt can open the display (else one line and exit
2), let a running instance come forward instead of starting twice, then the
service and its runner, the tray, the pause hotkey (the one saved in
Settings; a new one saved there replaces it at once), and `Service.start()`
on the worker. On a first run the tray asks for consent (its first snapshot
says nothing was asked); `Service.start()` installs no hook without consent,
so no hook exists before the question is answered.

Quitting (the menu, SIGTERM at logout, SIGINT) stops the recorder on the
worker, so its session is flushed and closed, and then the event loop.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence

import shiboken6
from PySide6.QtCore import QCoreApplication, QEvent, QObject, QSocketNotifier, Qt
from PySide6.QtWidgets import QApplication, QWidget
from shiboken6 import isValid

from cleartrace.errors import DisplayUnavailable
from cleartrace.paths import Paths, ensure_private_dirs, log_to_home
from cleartrace.preferences import load_pause_hotkey, pynput_hotkey
from cleartrace.service import Service
from cleartrace.ui import icons
from cleartrace.ui.hotkey import PauseHotkey
from cleartrace.ui.runner import Runner
from cleartrace.ui.single_instance import SingleInstance
from cleartrace.ui.tray import Tray

__all__ = ["WINDOWS", "Windows", "main", "qt_problem"]

log = logging.getLogger(__name__)

#: Tray signal → (module, class) of the window it opens, built as `cls(runner)`.
#: Imported when first asked for: the review window pulls in the detectors,
#: which the tray should not pay for at start.
WINDOWS: dict[str, tuple[str, str]] = {
    "consentRequested": ("cleartrace.ui.consent_dialog", "ConsentDialog"),
    "withdrawRequested": ("cleartrace.ui.withdraw_dialog", "WithdrawDialog"),
    "capturedRequested": ("cleartrace.ui.captured_now", "CapturedNowWindow"),
    "historyRequested": ("cleartrace.ui.history", "HistoryWindow"),
    "settingsRequested": ("cleartrace.ui.settings", "SettingsWindow"),
    "reviewRequested": ("cleartrace.ui.review", "ReviewWindow"),
}

_PROBE = "import sys\nfrom PySide6.QtGui import QGuiApplication\nQGuiApplication(sys.argv[:1])\n"


class Windows(QObject):
    """Opens the window each tray signal asks for, one of each at a time: asking
    again brings the open one forward. A window with a `hotkey_changed(str)`
    signal (Settings) has it connected to `on_hotkey_changed`."""

    def __init__(
        self,
        runner: Runner,
        tray: Tray,
        *,
        on_hotkey_changed: Callable[[str], None] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._runner, self._tray = runner, tray
        self._on_hotkey_changed = on_hotkey_changed
        self._open: dict[str, QWidget] = {}
        for signal_name in WINDOWS:
            getattr(tray, signal_name).connect(self._opener(signal_name))

    def _opener(self, signal_name: str) -> Callable[[], None]:
        def slot() -> None:
            self.open(signal_name)

        return slot

    def open(self, signal_name: str) -> QWidget | None:
        """Show the window for `signal_name` (a key of `WINDOWS`); None if unavailable."""
        shown = self._open.get(signal_name)
        if shown is not None and isValid(shown) and shown.isVisible():
            shown.showNormal()
            shown.raise_()
            shown.activateWindow()
            return shown
        module_name, class_name = WINDOWS[signal_name]
        cls = getattr(importlib.import_module(module_name), class_name)
        window: QWidget = cls(self._runner)
        # A fresh window each time it is opened anew: it loads current data.
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        changed = getattr(window, "hotkey_changed", None)
        if changed is not None and self._on_hotkey_changed is not None:
            changed.connect(self._on_hotkey_changed)
        self._open[signal_name] = window
        window.show()
        window.raise_()
        window.activateWindow()
        return window


def qt_problem(env: Mapping[str, str] = os.environ) -> str | None:
    """Why the tray cannot start here, or None.

    Qt aborts the whole process when its platform plugin cannot open the
    display (a missing library, a dead X server), which no `except` catches;
    so a child process tries first, for about half a second at start-up.
    """
    if QCoreApplication.instance() is not None:
        return None
    if (
        sys.platform.startswith("linux")
        and not env.get("QT_QPA_PLATFORM")
        and not env.get("DISPLAY")
        and not env.get("WAYLAND_DISPLAY")
    ):
        return (
            "cannot start the tray: no display (DISPLAY is not set); start it in your "
            "graphical session, or use the other commands ('cleartrace --help')"
        )
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE],
            env=dict(env),
            capture_output=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "cannot start the tray: Qt did not open the display within 30 s"
    if done.returncode != 0:
        where = env.get("DISPLAY") or env.get("WAYLAND_DISPLAY") or env.get("QT_QPA_PLATFORM")
        return (
            f"cannot start the tray: Qt could not open the display {where!r} "
            f"(exit status {done.returncode}); run 'QT_DEBUG_PLUGINS=1 cleartrace tray' "
            "to see which library is missing"
        )
    return None


def _hotkey_setting(runner: Runner, hotkey: PauseHotkey) -> Callable[[str], None]:
    """Start `hotkey` with the combination saved in Settings (read on the worker),
    and return what turns Settings' text ("Ctrl+Alt+Shift+P") into a new hotkey."""
    runner.call(
        lambda s: pynput_hotkey(load_pause_hotkey(s.paths)),
        hotkey.start,
        lambda _message: hotkey.start(),  # an unreadable setting: the default
    )
    return lambda text: hotkey.start(pynput_hotkey(text))


def _quit_on_signals(parent: QObject, quit_: Callable[[], None]) -> Callable[[], None]:
    """SIGTERM (logout) and SIGINT quit like the menu does; returns what undoes
    it (the wakeup fd unset and its sockets closed, before Qt objects go).

    Python runs signal handlers only between bytecodes, and the event loop sits
    in C, so the signal also writes a byte to a socket Qt watches (the wakeup fd).
    """
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    signal.set_wakeup_fd(writer.fileno())
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read, parent)

    def woken() -> None:
        reader.recv(64)
        quit_()

    def undo() -> None:
        notifier.setEnabled(False)
        signal.set_wakeup_fd(-1)
        reader.close()
        writer.close()

    notifier.activated.connect(woken)
    return undo


def _delete_qt_objects(app: QApplication, created: bool, *objects: QObject) -> None:
    """Delete the tray's Qt objects, every window, then the QApplication we
    made, now, while Python is whole.

    Left to the interpreter's finalisation, PySide deletes the QApplication
    and the objects it still wraps while Python is being torn down, and their
    destructors then run Python code (disconnected slots, queued answers)
    in a half-finalised interpreter, where any refcount slip of the binding
    aborts the process (the quit crash itself was PySide6 6.12.0's: see the
    pin in pyproject.toml).
    """
    for obj in objects:
        if isValid(obj):
            shiboken6.delete(obj)
    for widget in app.topLevelWidgets():  # the menu, the status window, open windows
        if isValid(widget):
            shiboken6.delete(widget)
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    app.processEvents()
    if created:
        app.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tray until Quit; 0 also when another instance was asked to come forward.

    Raises:
        DisplayUnavailable: Qt cannot open a display here (the message says why).
        HomeError: the home directory is unsafe or cannot be created.
    """
    problem = qt_problem()
    if problem is not None:
        raise DisplayUnavailable(problem)
    paths = Paths.from_env()
    ensure_private_dirs(paths)
    existing = QApplication.instance()
    created = not isinstance(existing, QApplication)
    if isinstance(existing, QApplication):
        app = existing
    else:
        app = QApplication([sys.argv[0], *(argv or [])])
    app.setQuitOnLastWindowClosed(False)
    app.setApplicationName("ClearTrace")
    app.setWindowIcon(icons.icon_for("recording"))

    instance = SingleInstance(paths)
    if instance.ask_first_to_raise():
        return 0
    log_to_home(paths)
    instance.listen()
    runner = Runner(Service(paths))
    tray = Tray(runner)
    hotkey = PauseHotkey(parent=tray)
    hotkey.activated.connect(tray.toggle_pause)
    hotkey.failed.connect(tray.set_hotkey_problem)
    hotkey.ready.connect(lambda: tray.set_hotkey_problem(None))
    Windows(runner, tray, on_hotkey_changed=_hotkey_setting(runner, hotkey), parent=tray)
    instance.raiseRequested.connect(tray.bring_forward)
    tray.finished.connect(app.quit)
    undo_signals = _quit_on_signals(tray, tray.quit)
    runner.call(lambda s: s.start(), on_error=lambda message: tray.notify("ClearTrace", message))
    runner.call(lambda s: s.start_uploads())
    tray.start()
    log.info("tray started (%s)", "system tray" if tray.tray_icon else "status window")
    # Started from a terminal (`make run`), a person otherwise sees nothing happen.
    where = (
        "its icon is in the system tray (your panel's notification area); click it for the menu"
        if tray.tray_icon
        else "no system tray here, so its status window stands in for the icon"
    )
    print(f"ClearTrace is running: {where}", file=sys.stderr, flush=True)
    try:
        app.exec()
    finally:
        # Every thread ends here, before anything Qt or Python is torn down.
        hotkey.stop()
        instance.close()
        runner.stop()  # the recorder is stopped already; this ends the worker
        undo_signals()
        _delete_qt_objects(app, created, tray, instance, runner)
    log.info("tray stopped")
    return 0
