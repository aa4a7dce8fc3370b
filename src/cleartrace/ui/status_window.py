"""The tray's stand-in where there is no system tray (GNOME without the
AppIndicator extension, some kiosks, the offscreen platform of the tests).

A recorder must never run unseen, so this small window stays on top, shows the
state icon and the same lines as the tray's tooltip, and offers the tray's
menu. Closing it minimises it instead: the only way to make it go is "Quit",
which stops recording too.
"""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QIcon
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QToolButton, QVBoxLayout, QWidget

__all__ = ["StatusWindow"]

_W = TypeVar("_W", bound=QWidget)

_MESSAGE_MS = 20_000  # how long a notification stays in the window
_WIDTH = 400


def _named(widget: _W, name: str) -> _W:
    widget.setObjectName(name)
    return widget


class StatusWindow(QWidget):
    """State icon ("stateIcon"), headline ("stateText"), details ("detailText"),
    the last notification ("messageText"), the act that fits the state
    ("primaryButton": pause, resume or consent) and the whole menu ("menuButton")."""

    def __init__(self, menu: QMenu, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window | Qt.WindowType.WindowStaysOnTopHint)
        self.setObjectName("statusWindow")
        self.setWindowTitle("ClearTrace")
        self._closable = False

        self.icon_label = _named(QLabel(), "stateIcon")
        self.state_label = _named(QLabel(), "stateText")
        font = self.state_label.font()
        font.setBold(True)
        self.state_label.setFont(font)
        self.detail_label = _named(QLabel(), "detailText")
        self.detail_label.setWordWrap(True)
        self.message_label = _named(QLabel(), "messageText")
        self.message_label.setWordWrap(True)
        self.message_label.hide()
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.setInterval(_MESSAGE_MS)
        self._message_timer.timeout.connect(self.message_label.hide)

        self.primary_button = _named(QToolButton(), "primaryButton")
        self.primary_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.menu_button = _named(QToolButton(), "menuButton")
        self.menu_button.setText("Menu")
        self.menu_button.setMenu(menu)
        self.menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)

        text = QVBoxLayout()
        text.addWidget(self.state_label)
        text.addWidget(self.detail_label)
        text.addWidget(self.message_label)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.primary_button)
        buttons.addWidget(self.menu_button)
        text.addLayout(buttons)
        top = QHBoxLayout(self)
        top.addWidget(self.icon_label, 0, Qt.AlignmentFlag.AlignTop)
        top.addLayout(text, 1)
        # A fixed width lets the wrapped lines decide the height (see _fit).
        self.setFixedWidth(_WIDTH)
        self.state_label.setWordWrap(True)

    def show_state(self, icon: QIcon, headline: str, details: list[str]) -> None:
        self.setWindowIcon(icon)
        self.icon_label.setPixmap(icon.pixmap(32, 32))
        self.state_label.setText(headline)
        self.detail_label.setText("\n".join(details))
        self._fit()

    def _fit(self) -> None:
        """Grow or shrink to the text: a top-level window does not follow its
        labels' word-wrapped height by itself."""
        layout = self.layout()
        if layout is not None:
            layout.activate()
        self.setFixedHeight(
            self.heightForWidth(_WIDTH) if self.hasHeightForWidth() else self.sizeHint().height()
        )

    def set_primary(self, action: QAction | None) -> None:
        """Offer `action` as the window's one button (hidden when None)."""
        if action is None:
            self.primary_button.hide()
            return
        if self.primary_button.defaultAction() is not action:
            self.primary_button.setDefaultAction(action)
        self.primary_button.show()

    def show_message(self, title: str, message: str) -> None:
        """A notification, shown in the window for a while (no tray to pop it up)."""
        self.message_label.setText(f"{title}: {message}")
        self.message_label.show()
        self._message_timer.start()
        self._fit()

    def bring_forward(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def close_for_good(self) -> None:
        """Close on quit (a plain close only minimises)."""
        self._closable = True
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        if self._closable:
            event.accept()
            return
        event.ignore()
        self.showMinimized()
