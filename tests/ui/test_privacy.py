"""The tray's "Privacy policy" window: the policy's notice first, then PRIVACY.md."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from cleartrace.consent.signed_policy import install_policy
from cleartrace.org.keys import generate
from cleartrace.org.policy_signing import new_policy, sign_policy
from cleartrace.paths import Paths
from cleartrace.service import Service
from cleartrace.ui.runner import Runner
from cleartrace.ui.tray import Tray
from tests.support.notice import EXAMPLE_NOTICE


@pytest.fixture
def org_runner(private_home: Paths, tmp_path: Path, qtbot: QtBot) -> Iterator[Runner]:
    """A runner whose service runs under an organisation's policy with a notice."""
    org = generate(tmp_path / "keys", "x25519")
    # Markdown in the organisation's words is shown as written, never rendered.
    notice = dataclasses.replace(
        EXAMPLE_NOTICE, retention="24 months *after* upload", dpo="dpo@example.com &lt;b&gt;"
    )
    policy = new_policy(org.bundle_public, "https://collector.example", notice=notice)
    install_policy(private_home, sign_policy(policy, org.signing_private))
    r = Runner(Service(private_home, env={}))
    yield r
    r.stop()


def privacy_text(qtbot: QtBot, runner: Runner) -> str:
    tray = Tray(runner, use_tray=False, interval_ms=100)
    tray.start()
    try:
        tray.action("privacy").trigger()
        qtbot.waitUntil(lambda: tray._privacy is not None and tray._privacy.isVisible())
        assert tray._privacy is not None
        return " ".join(tray._privacy.toPlainText().split())
    finally:
        with qtbot.waitSignal(tray.finished, timeout=20_000):
            tray.quit()


def test_under_the_built_in_policy_it_says_nothing_leaves_then_the_notice(
    qtbot: QtBot, runner: Runner
) -> None:
    text = privacy_text(qtbot, runner)
    assert "Policy 'cleartrace-default', version 4" in text
    assert "Under this policy nothing leaves this computer" in text
    assert "What leaves this computer: Nothing." in text
    assert text.index("What leaves this computer") < text.index("ClearTrace privacy notice")
    # PRIVACY.md says what an organisation's policy must tell, and that here nothing leaves.
    notice = text[text.index("ClearTrace privacy notice") :]
    for told in (
        "nothing leaves this computer",
        "data protection officer",
        "legal basis",
        "evaluate your individual performance",
    ):
        assert told in notice, told


def test_under_an_organisation_it_shows_its_notice_as_written(
    qtbot: QtBot, org_runner: Runner
) -> None:
    text = privacy_text(qtbot, org_runner)
    for expected in (
        "Responsible for your data: Example GmbH (privacy@example.com, Musterweg 1, 10115 Berlin)",
        "Data protection officer: dpo@example.com &lt;b&gt;",  # an entity stays as written
        "Why it is collected: Train models of office workflows; Improve keyboard shortcuts",
        "Legal basis: Consent, GDPR Art. 6(1)(a); you may withdraw it at any time",
        "Who receives it: Example GmbH research team; Hosting: Example Cloud (processor)",
        "Where it is processed: Germany (EU)",
        "How long your organisation keeps it: 24 months *after* upload",
        "(works agreement: Betriebsvereinbarung KI-Daten 2026/03)",
        "are uploaded to https://collector.example",
        "ClearTrace privacy notice",
    ):
        assert expected in text, expected
