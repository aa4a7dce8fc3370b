"""A Qt text field for the capture tests: what a person would type into.

Usage: python textfield.py [--widget plain|line] [--class CLASS] [--save-to FILE]

Run it with QT_QPA_PLATFORM=xcb on the test display. It shows a
QPlainTextEdit (or a QLineEdit) with the keyboard focus, prints the window id
as 0x... and a newline once its event loop runs (`xdotool windowactivate
--sync` then waits for the window to map), and when stdin closes prints
{"text": ...} as one JSON line and quits. stdin is watched by a
QSocketNotifier, so the GUI thread never blocks on it.

With --save-to it is a small editor: Ctrl+S writes the text to FILE (replaced
whole, by a rename, so a reader never sees half of it), as a person's editor
saves; its class (--class) makes it an application of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from PySide6.QtCore import QSocketNotifier, QTimer
from PySide6.QtGui import QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication, QLineEdit, QPlainTextEdit, QWidget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--widget", choices=("plain", "line"), default="plain")
    parser.add_argument("--class", dest="wm_class", default="Textfield")
    parser.add_argument("--save-to", type=Path, default=None)
    args = parser.parse_args()
    app = QApplication([args.wm_class.lower()])
    app.setApplicationName(args.wm_class)
    field: QPlainTextEdit | QLineEdit = QPlainTextEdit() if args.widget == "plain" else QLineEdit()
    # Monospace and wide: a line never wraps, so Home/End act on the line as typed.
    field.setFont(QFont("DejaVu Sans Mono", 10))
    field.setWindowTitle("textfield")
    field.resize(1000, 300)
    field.show()
    field.activateWindow()
    field.setFocus()

    def text() -> str:
        return field.toPlainText() if isinstance(field, QPlainTextEdit) else field.text()

    def on_stdin() -> None:
        if os.read(sys.stdin.fileno(), 4096):
            return
        notifier.setEnabled(False)
        sys.stdout.write(json.dumps({"text": text()}) + "\n")
        sys.stdout.flush()
        app.quit()

    def save(to: Path) -> None:
        partial = to.with_name(to.name + ".tmp")
        partial.write_text(text())
        partial.replace(to)

    if args.save_to is not None:
        shortcut = QShortcut(QKeySequence.StandardKey.Save, field)
        shortcut.activated.connect(lambda: save(args.save_to))

    notifier = QSocketNotifier(sys.stdin.fileno(), QSocketNotifier.Type.Read)
    notifier.activated.connect(on_stdin)
    window: QWidget = field.window()

    def announce() -> None:
        sys.stdout.write(f"{int(window.winId()):#x}\n")
        sys.stdout.flush()

    QTimer.singleShot(0, announce)
    app.exec()


if __name__ == "__main__":
    main()
