"""The tray icon, or its stand-in window: the state at a glance and every act in one menu.

`Tray` renders the service's `Status` (the one `cleartrace status --json`
prints) and holds no policy of its own: what each act does is a `Service`
call (an action) made through the `Runner`, and what an action may do now
follows from the status alone (`enabled_actions`). The
windows other modules own (review, consent, settings, ...) are asked for with
signals, which the app connects to them.

The snapshot is asked for once a second, never twice at a time: a refresh
asked for while one is on its way is made as soon as that one arrives.
"""

# ruff: noqa: N815 — Qt signals keep Qt's camelCase names (reviewRequested, ...).

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction, QCursor
from PySide6.QtWidgets import QMenu, QSystemTrayIcon, QTextBrowser, QWidget

from cleartrace.actions.recording import ended_by_timer, forgotten_text
from cleartrace.consent.removal import NOT_KEPT
from cleartrace.review.redaction import Forgotten
from cleartrace.service import Service
from cleartrace.status import RecorderState, Status
from cleartrace.ui import icons
from cleartrace.ui.privacy import privacy_markdown
from cleartrace.ui.runner import Runner
from cleartrace.ui.status_window import StatusWindow
from cleartrace.ui.tray_text import ACTIONS, describe, enabled_actions, sessions_phrase

# ACTIONS, describe and enabled_actions are tray_text's, re-exported for the windows.
__all__ = ["ACTIONS", "Tray", "describe", "enabled_actions"]

log = logging.getLogger(__name__)

_MESSAGE_MS = 10_000


class Tray(QObject):
    """The state icon with its tooltip and menu, in the system tray or, where
    there is none (`use_tray` False, or None and none detected), in a
    `StatusWindow`. Call `start()` to show it and begin refreshing."""

    reviewRequested = Signal()
    capturedRequested = Signal()
    settingsRequested = Signal()
    historyRequested = Signal()
    withdrawRequested = Signal()
    consentRequested = Signal()
    #: Quitting is done: the recorder is stopped and its session closed.
    finished = Signal()
    #: Every notification (title, message), whether the tray or the window shows it.
    notified = Signal(str, str)

    #: Tests substitute a subclass to see what `showMessage` is given.
    tray_icon_class: type[QSystemTrayIcon] = QSystemTrayIcon

    def __init__(
        self,
        runner: Runner,
        *,
        use_tray: bool | None = None,
        interval_ms: int = 1000,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._runner = runner
        if use_tray is None:
            use_tray = QSystemTrayIcon.isSystemTrayAvailable()
        self.menu = QMenu()
        self._actions = self._build_menu()
        self.snapshot: Status | None = None
        self.icon_state = "off"
        self._error: str | None = None
        self._hotkey_problem: str | None = None
        self._in_flight = self._again = self._quitting = self._asked_consent = False
        self._announced_pending = 0
        self._privacy: QTextBrowser | None = None
        self.tray_icon: QSystemTrayIcon | None = None
        self.window: StatusWindow | None = None
        if use_tray:
            self.tray_icon = self.tray_icon_class(icons.icon_for("off"), self)
            self.tray_icon.setContextMenu(self.menu)
            self.tray_icon.activated.connect(self._on_activated)
        else:
            self.window = StatusWindow(self.menu)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.refresh)
        self._render("Starting…", [])

    # -- building ------------------------------------------------------------------

    def _build_menu(self) -> dict[str, QAction]:
        handlers: dict[str, Callable[[], None]] = {
            "pause15": lambda: self._act(lambda s: s.pause(15 * 60)),
            "pause1h": lambda: self._act(lambda s: s.pause(60 * 60)),
            "pause": lambda: self._act(lambda s: s.pause(None)),
            "resume": lambda: self._act(lambda s: s.resume()),
            "forget15": self._forget,
            "review": lambda: self.reviewRequested.emit(),
            "upload": self._upload,
            "captured": lambda: self.capturedRequested.emit(),
            "consent": lambda: self.consentRequested.emit(),
            "settings": lambda: self.settingsRequested.emit(),
            "privacy": self._open_privacy,
            "history": lambda: self.historyRequested.emit(),
            "withdraw": lambda: self.withdrawRequested.emit(),
            "quit": self.quit,
        }
        actions: dict[str, QAction] = {}
        for entry in ACTIONS:
            if entry is None:
                self.menu.addSeparator()
                continue
            name, text = entry
            action = QAction(text, self.menu)
            action.setObjectName(name)
            action.triggered.connect(handlers[name])
            self.menu.addAction(action)
            actions[name] = action
        return actions

    def action(self, name: str) -> QAction:
        """The menu action with this objectName (see `ACTIONS`)."""
        return self._actions[name]

    def start(self) -> None:
        if self.tray_icon is not None:
            self.tray_icon.show()
        if self.window is not None:
            self.window.show()
        self._timer.start()
        self.refresh()

    # -- state -----------------------------------------------------------------------

    def refresh(self) -> None:
        """Ask for a snapshot now (at most one is ever on its way)."""
        if self._quitting:
            return
        if self._in_flight:
            self._again = True
            return
        self._in_flight = True
        self._runner.call(lambda s: s.snapshot(), self._show, self._snapshot_failed, owner=self)

    def _show(self, snap: Status) -> None:
        self._in_flight = False
        previous, self.snapshot, self._error = self.snapshot, snap, None
        if not self._quitting:
            self._announce(previous, snap)
            if not snap.consent_asked and not self._asked_consent:
                self._asked_consent = True  # first run: ask before any hook exists
                self.consentRequested.emit()
            self._render(*describe(snap))
        self._again_if_asked()

    def _snapshot_failed(self, message: str) -> None:
        self._in_flight = False
        self.snapshot, self._error = None, message
        if not self._quitting:
            self._render(f"Cannot record: {message}", [])
        self._again_if_asked()

    def _again_if_asked(self) -> None:
        if self._again:
            self._again = False
            self.refresh()

    @property
    def shown_state(self) -> str:
        if self._error is not None:
            return "cannot record"
        if self.snapshot is None:
            return "off"
        if self.snapshot.uploading and self.snapshot.state in ("off", "paused"):
            # A recording is never hidden behind the upload arrow.
            return "uploading"
        return self.snapshot.state

    def tooltip(self) -> str:
        """What the tooltip says now (the status window shows the same)."""
        return self._tooltip

    def _render(self, headline: str, details: list[str]) -> None:
        if self._hotkey_problem:
            details = [*details, f"Pause hotkey unavailable: {self._hotkey_problem}"]
        state = self.shown_state
        icon = icons.icon_for(state)
        enabled = set() if self._quitting else enabled_actions(self.snapshot)
        for name, action in self._actions.items():
            action.setEnabled(name in enabled)
        self._tooltip = "\n".join([f"ClearTrace: {headline}", *details])
        if self.tray_icon is not None:
            if state != self.icon_state:
                self.tray_icon.setIcon(icon)
            self.tray_icon.setToolTip(self._tooltip)
        if self.window is not None:
            self.window.show_state(icon, headline, details)
            primary = {"recording": "pause", "paused": "resume"}.get(state, "consent")
            self.window.set_primary(None if self._quitting else self._actions[primary])
        self.icon_state = state

    def set_hotkey_problem(self, message: str | None) -> None:
        """Show why the pause hotkey does not work (None: it works)."""
        self._hotkey_problem = message
        if self.snapshot is not None:
            self._render(*describe(self.snapshot))

    # -- notifications -----------------------------------------------------------------

    def notify(self, title: str, message: str, *, warning: bool = False) -> None:
        """Pop up a message from the tray, or show it in the status window."""
        self.notified.emit(title, message)
        if self.tray_icon is not None:
            kind = QSystemTrayIcon.MessageIcon
            self.tray_icon.showMessage(
                title, message, kind.Warning if warning else kind.Information, _MESSAGE_MS
            )
        if self.window is not None:
            self.window.show_message(title, message)

    def _announce(self, previous: Status | None, snap: Status) -> None:
        if previous is not None and ended_by_timer(previous, snap):
            self.notify("Recording again", "The pause you set has ended; ClearTrace records again.")
        if snap.pending_review > self._announced_pending:
            sessions, days = sessions_phrase(snap.pending_review), snap.hold_days
            if snap.collector is None:
                text = (
                    f"{sessions} will be approved automatically after {days} days unless you "
                    "hold them; nothing leaves this computer until it is enrolled. "
                    "Choose 'Review sessions…' in the menu."
                )
            else:
                text = (
                    f"{sessions} will upload automatically after {days} days unless you hold "
                    "them: choose 'Review sessions…' in the menu."
                )
            self.notify("Sessions await your review", text)
        self._announced_pending = snap.pending_review
        if previous is None:
            return
        if snap.sessions_uploaded > previous.sessions_uploaded:
            sent = sessions_phrase(snap.sessions_uploaded - previous.sessions_uploaded)
            self.notify("Uploaded", f"{sent} reached your organisation.")
        if (
            snap.upload_passes > previous.upload_passes
            and snap.upload_problem
            and snap.upload_problem != previous.upload_problem
        ):
            self.notify("Upload failed", snap.upload_problem, warning=True)

    # -- acts --------------------------------------------------------------------------

    def _act(self, fn: Callable[[Service], Any]) -> None:
        self._runner.call(fn, lambda _: self.refresh(), self._failed, owner=self)

    def _failed(self, message: str) -> None:
        self.notify("ClearTrace", message, warning=True)
        self.refresh()

    def _upload(self) -> None:
        self._act(lambda s: s.upload_soon())

    def _forget(self) -> None:
        def done(forgotten: Forgotten) -> None:
            said = forgotten_text(forgotten, "15 minutes")  # as the CLI's `forget` says it
            self.notify("Forgotten", f"{said[0].upper()}{said[1:]}.")
            self.refresh()

        self._runner.call(lambda s: s.forget(15 * 60), done, self._failed, owner=self)

    def toggle_pause(self) -> None:
        """The hotkey's act: pause a recording until resumed, or resume a pause."""
        if self._quitting:
            return

        def done(state: RecorderState) -> None:
            if state is RecorderState.PAUSED:
                self.notify("Paused", "Nothing is recorded until you resume.")
            elif state is RecorderState.RECORDING:
                self.notify("Recording again", "You resumed the recording.")
            else:
                self.notify("Nothing to pause", f"ClearTrace is {state}.")
            self.refresh()

        self._runner.call(lambda s: s.toggle(), done, self._failed, owner=self)

    def _open_privacy(self) -> None:
        def show(text: str) -> None:
            if self._privacy is None:
                self._privacy = QTextBrowser()
                self._privacy.setObjectName("privacyPolicy")
                self._privacy.setWindowTitle("ClearTrace: privacy policy")
                self._privacy.setOpenExternalLinks(True)
                self._privacy.resize(720, 640)
            self._privacy.setMarkdown(text)
            _bring_forward(self._privacy)

        self._runner.call(lambda s: privacy_markdown(s.policy), show, self._failed, owner=self)

    def bring_forward(self) -> None:
        """A second start asked for ClearTrace: show the window, or in the tray
        open "What is captured now" and say where the menu is."""
        if self.window is not None:
            self.window.bring_forward()
            return
        self.capturedRequested.emit()
        self.notify("ClearTrace is already running", "Its menu is in the system tray.")

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        # Many Linux trays send only clicks, never a context-menu request.
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.menu.popup(QCursor.pos())

    def quit(self) -> None:
        """Stop refreshing, stop the recorder on the worker (the session is
        flushed and closed), then hide and emit `finished`."""
        if self._quitting:
            return
        self._quitting = True
        self._timer.stop()
        self._render("Stopping…", [])
        if self._privacy is not None:
            self._privacy.close()
        self._runner.call(lambda s: s.close(), self._finish, self._close_failed, owner=self)

    def _close_failed(self, message: str) -> None:
        log.warning("stopping the recorder failed: %s", message)
        self._finish(None)

    def _finish(self, kept: object) -> None:
        if kept is False:  # Service.close: the session it closed had no input
            self.notify("Session not kept", f"{NOT_KEPT[0].upper()}{NOT_KEPT[1:]}.")
        if self.tray_icon is not None:
            self.tray_icon.hide()
        if self.window is not None:
            self.window.close_for_good()
        self.finished.emit()


def _bring_forward(widget: QWidget) -> None:
    widget.showNormal()
    widget.raise_()
    widget.activateWindow()
