"""Uploading from the tray: its menu act, what the tooltip says, what it announces."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from cleartrace.categories import Category
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.service import Service
from cleartrace.ui.runner import Runner
from cleartrace.ui.tray import Tray
from tests.support.orgkit import Org, enrolled, record_session


def enrolled_runner(org: Org, paths: Paths) -> Runner:
    enrolled(org, paths).close()
    return Runner(Service(paths, env={}))


def approved_and_shown(
    qtbot: QtBot, org: Org, private_home: Paths
) -> tuple[Runner, str, Tray, list[tuple[str, str]]]:
    """An enrolled device with one approved session, its tray started: (runner,
    session, tray, the notifications it gives)."""
    runner = enrolled_runner(org, private_home)
    runner.service.give(list(Category))
    session = record_session(runner.service.home())
    runner.service.approve(session)
    tray = Tray(runner, use_tray=False, interval_ms=100)
    messages: list[tuple[str, str]] = []
    tray.notified.connect(lambda title, text: messages.append((title, text)))
    tray.start()
    qtbot.waitUntil(lambda: tray.action("upload").isEnabled(), timeout=10_000)
    return runner, session, tray, messages


def tooltip_lines(tray: Tray) -> list[str]:
    return tray.tooltip().splitlines()


def test_not_enrolled_the_tray_says_nothing_leaves(qtbot: QtBot, runner: Runner) -> None:
    tray = Tray(runner, use_tray=False, interval_ms=100)
    tray.start()
    qtbot.waitUntil(lambda: tray.snapshot is not None, timeout=10_000)
    assert "Uploads: not enrolled, nothing leaves this computer" in tooltip_lines(tray)
    assert not tray.action("upload").isEnabled()
    with qtbot.waitSignal(tray.finished, timeout=20_000):
        tray.quit()


def test_upload_now_from_the_menu_sends_approved_sessions_and_says_so(
    qtbot: QtBot, org: Org, private_home: Paths
) -> None:
    runner, session, tray, messages = approved_and_shown(qtbot, org, private_home)
    service = runner.service
    assert "Uploads: 1 session approved, waiting to upload" in tooltip_lines(tray)
    tray.action("upload").trigger()
    qtbot.waitUntil(
        lambda: ("Uploaded", "1 session reached your organisation.") in messages, timeout=20_000
    )
    qtbot.waitUntil(lambda: "Uploads: nothing waiting" in tooltip_lines(tray), timeout=10_000)
    assert service.home().store.session(session).state == "uploaded"
    assert len(org.collector.bundles()) == 1
    with qtbot.waitSignal(tray.finished, timeout=20_000):
        tray.quit()
    runner.stop()


def test_a_collector_that_is_down_is_announced_and_the_session_waits(
    qtbot: QtBot, org: Org, private_home: Paths
) -> None:
    runner, session, tray, messages = approved_and_shown(qtbot, org, private_home)
    service = runner.service
    org.collector.stop()
    tray.action("upload").trigger()
    qtbot.waitUntil(lambda: any(t == "Upload failed" for t, _ in messages), timeout=30_000)
    assert any("cannot reach the collector" in line for line in tooltip_lines(tray))
    assert service.home().store.session(session).state == "approved"
    with qtbot.waitSignal(tray.finished, timeout=20_000):
        tray.quit()
    runner.stop()


def test_once_enrolled_sessions_awaiting_review_are_said_to_upload(
    qtbot: QtBot, org: Org, private_home: Paths
) -> None:
    runner = enrolled_runner(org, private_home)
    tray = Tray(runner, use_tray=False, interval_ms=100)
    messages: list[tuple[str, str]] = []
    tray.notified.connect(lambda title, text: messages.append((title, text)))
    tray.start()
    qtbot.waitUntil(lambda: tray.snapshot is not None, timeout=10_000)
    home = Home.open(private_home, create=False)  # its own connections, as the CLI's
    record_session(home)  # finished, pending review
    home.close()
    qtbot.waitUntil(lambda: bool(messages), timeout=10_000)
    assert messages[0] == (
        "Sessions await your review",
        "1 session will upload automatically after 3 days unless you hold them: "
        "choose 'Review sessions…' in the menu.",
    )
    with qtbot.waitSignal(tray.finished, timeout=20_000):
        tray.quit()
    runner.stop()
