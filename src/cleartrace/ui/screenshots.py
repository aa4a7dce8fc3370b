"""`make screenshots`: every window and tray state rendered to PNG files.

Run under an X server (the Makefile starts Xvfb): a throwaway home gets a
demo recording — typing with an e-mail address and a card number in it,
mouse work, an excluded interval, a redaction — and each window is shown,
given time to load through the runner, and grabbed. Nothing here touches the
person's own home.

Usage: python -m cleartrace.ui.screenshots OUTDIR
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QApplication, QWidget

from cleartrace.categories import USUAL, Category
from cleartrace.consent.notice import Notice
from cleartrace.consent.signed_policy import install_policy
from cleartrace.events import Kind, RawEvent, keysym_of_char
from cleartrace.home import Home
from cleartrace.org.keys import generate
from cleartrace.org.policy_signing import new_policy, sign_policy
from cleartrace.paths import Paths
from cleartrace.service import Service
from cleartrace.ui import icons
from cleartrace.ui.captured_now import CapturedNowWindow
from cleartrace.ui.consent_dialog import ConsentDialog
from cleartrace.ui.history import HistoryWindow
from cleartrace.ui.review import ReviewWindow
from cleartrace.ui.runner import Runner
from cleartrace.ui.settings import SettingsWindow
from cleartrace.ui.tray import Tray
from cleartrace.ui.withdraw_dialog import WithdrawDialog

__all__ = ["main"]

MS = 1_000_000
TEXTS = [
    (
        "thunderbird",
        "Hi Anna,\nthe report is ready. Write to anna.berg@example.org"
        " or call +44 20 7946 0958.\nThanks",
    ),
    ("libreoffice-calc", "Invoice 2024-117\tpaid by card 4111 1111 1111 1111"),
    ("xterm", "git push origin main"),
]


def _wait(runner: Runner, ms: int = 300) -> None:
    """Let queued service calls finish and their answers paint (no processEvents:
    it is unsafe while the worker thread runs Python code)."""
    deadline = time.monotonic() + 30
    settled = 0  # one more round after the last answer: its layout change is queued too
    while settled < 2 and time.monotonic() < deadline:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()
        settled = settled + 1 if runner.pending == 0 else 0


def _demo_session(paths: Paths, start_ns: int) -> str:
    home = Home.open(paths, create=True)
    try:
        handle = home.store.begin_session(start_ns, 0)
        events: list[RawEvent] = []
        t = 0
        for app, text in TEXTS:
            events.append((t, int(Kind.FOCUS), 0, 0, 0, 0, (app, None)))
            for i in range(900):  # a minute and a half of mouse work
                t += 100 * MS
                events.append((t, int(Kind.MOVE), 200 + i % 600, 300 + i % 200, 0, 0, None))
                if i % 150 == 0:
                    events.append((t + MS, int(Kind.BUTTON_DOWN), 300, 300, 1, 0, None))
                    events.append((t + 2 * MS, int(Kind.BUTTON_UP), 300, 300, 1, 0, None))
                if i % 40 == 0:
                    events.append((t + 3 * MS, int(Kind.SCROLL), 300, 300, 0, -1, None))
            for ch in text:
                code = {"\n": 0xFF0D, "\t": 0xFF09}.get(ch) or keysym_of_char(ch)
                t += 180 * MS
                events.append((t, int(Kind.KEY_DOWN), code, 0, 0, 0, None))
                events.append((t + 60 * MS, int(Kind.KEY_UP), code, 0, 0, 0, None))
            t += 30_000 * MS
        events.append((t, int(Kind.EXCLUDED_START), 0, 0, 0, 0, None))
        t += 90_000 * MS
        events.append((t, int(Kind.EXCLUDED_END), 0, 0, 0, 0, None))
        home.store.append_chunk(handle, events)
        home.store.end_session(handle, start_ns + t + MS)
        return handle.id
    finally:
        home.close()


def _save(widget: QWidget, out: Path, name: str) -> None:
    pixmap: QPixmap = widget.grab()
    pixmap.save(str(out / f"{name}.png"))
    print(f"{out / name}.png {pixmap.width()}x{pixmap.height()}")


def _shoot(out: Path, make: Callable[[], QWidget], runner: Runner, name: str) -> None:
    widget = make()
    widget.show()
    _wait(runner)
    _save(widget, out, name)
    widget.close()
    widget.deleteLater()


#: An example organisation's notice, as an officer writes it for `org policy init --info`.
EXAMPLE_NOTICE = Notice(
    controller_name="Example GmbH",
    controller_contact="privacy@example.com, Musterweg 1, 10115 Berlin",
    purposes=("Train models of office workflows",),
    dpo="dpo@example.com",
    legal_basis="Consent, GDPR Art. 6(1)(a); you may withdraw it at any time",
    recipients=("Example GmbH research team", "Example Cloud (hosting, processor)"),
    processing_location="Germany (EU)",
    retention="24 months after upload, then deleted",
    no_performance_evaluation=True,
    works_agreement="Betriebsvereinbarung KI-Daten 2026/03",
)


def _org_consent_dialog(out: Path, tmp: Path) -> None:
    """The consent dialog under an organisation's signed policy, in a home of its own."""
    org = generate(tmp / "org-keys", "x25519")
    (tmp / "org-run").mkdir(mode=0o700)
    paths = Paths(tmp / "org-home", tmp / "org-run")
    # This organisation asks for typing rhythm too: the dialog offers it, unticked.
    policy = new_policy(
        org.bundle_public,
        "https://ct.example.org",
        notice=EXAMPLE_NOTICE,
        categories=Category,
    )
    install_policy(paths, sign_policy(policy, org.signing_private))
    runner = Runner(Service(paths))
    _shoot(out, lambda: ConsentDialog(runner), runner, "consent-dialog-org")
    runner.stop()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else "docs/screenshots")
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory(prefix="ct-shots-") as tmp:
        os.environ["CLEARTRACE_HOME"] = f"{tmp}/home"
        os.environ["XDG_RUNTIME_DIR"] = f"{tmp}/run"
        os.environ.setdefault("CLEARTRACE_KEYSTORE", "file")
        Path(f"{tmp}/run").mkdir(mode=0o700)
        paths = Paths.from_env()
        runner = Runner(Service(paths))
        # First run: nothing consented, the consent dialog and the "off" state.
        tray = Tray(runner, use_tray=False)
        tray.start()
        _wait(runner)
        assert tray.window is not None
        _save(tray.window, out, "status-off")
        _shoot(out, lambda: ConsentDialog(runner), runner, "consent-dialog")
        _org_consent_dialog(out, Path(tmp))
        # Recording, with a demo session to review.
        runner.call(lambda s: s.give(list(USUAL)))
        _wait(runner)
        session = _demo_session(paths, time.time_ns() - 3 * 3600 * 10**9)
        runner.call(lambda s: s.redact(s.select_span(session, 3, 4, 8)))
        # The phone number, released: it is shown underlined, not shaded.
        phone = TEXTS[0][1].index("+44")
        runner.call(lambda s: s.release_detection(session, 1, phone, phone + 16))
        tray.refresh()
        _wait(runner, 1200)
        _save(tray.window, out, "status-recording")
        _shoot(out, lambda: CapturedNowWindow(runner), runner, "captured-now")
        runner.call(lambda s: s.pause(15 * 60))
        tray.refresh()
        _wait(runner, 600)
        _save(tray.window, out, "status-paused")
        runner.call(lambda s: s.resume())
        _wait(runner)

        def reviewed() -> QWidget:
            window = ReviewWindow(runner)
            window.resize(1100, 760)
            window.show()
            _wait(runner)
            window.table.select_id(session)
            return window

        _shoot(out, reviewed, runner, "review")
        _shoot(out, lambda: HistoryWindow(runner), runner, "history")
        _shoot(out, lambda: SettingsWindow(runner), runner, "settings")
        _shoot(out, lambda: WithdrawDialog(runner), runner, "withdraw-dialog")
        for state in ("recording", "paused", "off", "cannot record", "uploading"):
            icons.icon_for(state).pixmap(64, 64).save(
                str(out / f"icon-{state.replace(' ', '-')}.png")
            )
        _quit(tray)
        # The same home where nothing can be recorded (here: no display).
        blind = Runner(Service(paths, env={}))
        tray = Tray(blind, use_tray=False)
        tray.start()
        _wait(blind, 600)
        assert tray.window is not None
        _save(tray.window, out, "status-cannot-record")
        _quit(tray)
    app.closeAllWindows()
    return 0


def _quit(tray: Tray) -> None:
    """Quit as the menu does and wait until the recorder has closed its session."""
    done = QEventLoop()
    tray.finished.connect(done.quit)
    QTimer.singleShot(30_000, done.quit)
    tray.quit()
    done.exec()


if __name__ == "__main__":
    raise SystemExit(main())
