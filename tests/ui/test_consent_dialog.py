"""The first-run consent dialog over a real service: every answer is a ledger record."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QTextDocumentFragment
from PySide6.QtWidgets import QCheckBox, QDialog, QLabel, QPushButton
from pytestqt.qtbot import QtBot

from cleartrace.categories import USUAL, Category
from cleartrace.consent.policy import DEFAULT_POLICY
from cleartrace.consent.signed_policy import install_policy, read_signed_policy
from cleartrace.org.keys import generate
from cleartrace.org.policy_signing import new_policy, sign_policy
from cleartrace.paths import Paths
from cleartrace.service import Service
from cleartrace.ui.consent_dialog import ConsentDialog
from cleartrace.ui.runner import Runner
from tests.support import VECTORS
from tests.support.notice import EXAMPLE_NOTICE

ALL = {c.value for c in USUAL}


@pytest.fixture
def dialog(qtbot: QtBot, runner: Runner, settle: Callable[[], None]) -> ConsentDialog:
    d = ConsentDialog(runner)
    qtbot.addWidget(d)
    d.show()
    settle()
    return d


def box(dialog: ConsentDialog, category: Category) -> QCheckBox:
    found = dialog.findChild(QCheckBox, f"consent_{category.value}")
    assert found is not None, category
    return found


def button(dialog: ConsentDialog, name: str) -> QPushButton:
    found = dialog.findChild(QPushButton, name)
    assert found is not None, name
    return found


def click(qtbot: QtBot, widget: QCheckBox | QPushButton) -> None:
    """Click where a person would: a check box reacts on its box and label only,
    and the layout makes it wider than those."""
    at = QPoint(8, widget.height() // 2) if isinstance(widget, QCheckBox) else QPoint()
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=at)  # QPoint(): the centre


def consent_records(service: Service) -> list[tuple[str, set[str]]]:
    return [
        (r["kind"], set(r["categories"]))
        for r in service.ledger().records
        if r["kind"].startswith("consent.")
    ]


def test_shows_the_policy_and_one_unticked_box_per_category(
    dialog: ConsentDialog, service: Service
) -> None:
    purpose = dialog.findChild(QLabel, "policy_purpose")
    policy_id = dialog.findChild(QLabel, "policy_id")
    assert purpose is not None
    assert "train AI models" in purpose.text()
    assert policy_id is not None
    assert f"'cleartrace-default', version {DEFAULT_POLICY.version}" in policy_id.text()
    for category in USUAL:
        assert not box(dialog, category).isChecked()
    assert dialog.findChild(QCheckBox, "consent_typing_rhythm") is None  # not asked for
    keys = dialog.findChild(QLabel, "explain_keys")
    assert keys is not None
    assert "the text you type, and your keyboard layout: 'Dear Anna'" in keys.text()
    moves = dialog.findChild(QLabel, "explain_mouse_move")
    assert moves is not None
    assert "up to 120 times a second" in moves.text()  # the policy's limit
    assert service.snapshot().hooks == ()


def test_no_sentence_is_said_twice(dialog: ConsentDialog) -> None:
    texts = [label.text() for label in dialog.findChildren(QLabel) if label.text()]
    sentences = [s.strip() for text in texts for s in text.split(".") if len(s.strip()) > 20]
    assert len(sentences) == len(set(sentences))
    said = " ".join(texts).lower()
    assert said.count("withdraw at any time") == 1


def test_with_nothing_selected_it_cannot_agree(
    qtbot: QtBot, dialog: ConsentDialog, service: Service, settle: Callable[[], None]
) -> None:
    agree = button(dialog, "agree")
    assert not agree.isEnabled()
    click(qtbot, agree)
    settle()
    assert dialog.isVisible()
    assert service.ledger().records == []
    click(qtbot, box(dialog, Category.SCROLL))
    assert agree.isEnabled()
    click(qtbot, box(dialog, Category.SCROLL))
    assert not agree.isEnabled()


def test_agreeing_gives_the_ticked_and_refuses_the_rest(
    qtbot: QtBot, dialog: ConsentDialog, service: Service, settle: Callable[[], None]
) -> None:
    assert service.snapshot().hooks == ()  # the dialog comes before any hook
    click(qtbot, box(dialog, Category.KEYS))
    click(qtbot, box(dialog, Category.CLICKS))
    with qtbot.waitSignal(dialog.finished, timeout=10_000) as finished:
        click(qtbot, button(dialog, "agree"))
    assert finished.args == [QDialog.DialogCode.Accepted.value]
    assert dialog.outcome == "agreed"
    settle()
    records = consent_records(service)
    assert sorted(kind for kind, _ in records) == ["consent.given", "consent.refused"]
    assert dict(records) == {
        "consent.given": {"keys", "clicks"},
        "consent.refused": ALL - {"keys", "clicks"},
    }
    snap = service.snapshot()
    assert snap.granted == {Category.KEYS, Category.CLICKS}
    # Without a display the recorder cannot start; it says so instead of pretending.
    assert (snap.state, snap.hooks) == ("cannot record", ())


def test_refuse_all_writes_only_refusals_and_stays_off(
    qtbot: QtBot, dialog: ConsentDialog, service: Service, settle: Callable[[], None]
) -> None:
    click(qtbot, box(dialog, Category.KEYS))  # ticked, then refused all the same
    with qtbot.waitSignal(dialog.finished, timeout=10_000) as finished:
        click(qtbot, button(dialog, "refuse"))
    assert finished.args == [QDialog.DialogCode.Rejected.value]
    assert dialog.outcome == "refused"
    settle()
    assert consent_records(service) == [("consent.refused", ALL)]
    snap = service.snapshot()
    assert (snap.state, snap.granted, snap.hooks) == ("off", frozenset(), ())


def test_titles_pull_in_the_application_and_lose_it_together(
    qtbot: QtBot, dialog: ConsentDialog
) -> None:
    titles, app = box(dialog, Category.WINDOW_TITLES), box(dialog, Category.APP_FOCUS)
    click(qtbot, titles)
    assert titles.isChecked()
    assert app.isChecked()
    click(qtbot, app)
    assert not titles.isChecked()
    assert not app.isChecked()
    click(qtbot, app)
    assert app.isChecked()
    assert not titles.isChecked()


def test_titles_and_application_are_given_together(
    qtbot: QtBot, dialog: ConsentDialog, service: Service, settle: Callable[[], None]
) -> None:
    click(qtbot, box(dialog, Category.WINDOW_TITLES))
    with qtbot.waitSignal(dialog.finished, timeout=10_000):
        click(qtbot, button(dialog, "agree"))
    settle()
    assert dict(consent_records(service))["consent.given"] == {"app_focus", "window_titles"}


def test_an_error_shows_in_the_dialog_and_it_stays_open(
    qtbot: QtBot,
    dialog: ConsentDialog,
    service: Service,
    settle: Callable[[], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cleartrace.errors import DiskFull

    def full(*_args: Any) -> Any:
        raise DiskFull("cannot write the ledger: the disk is full; free some space")

    monkeypatch.setattr(service, "give", full)
    click(qtbot, box(dialog, Category.KEYS))
    click(qtbot, button(dialog, "agree"))
    settle()
    error = dialog.findChild(QLabel, "error")
    assert error is not None
    assert error.isVisibleTo(dialog)
    assert "could not be stored" in error.text()
    assert "disk is full" in error.text()
    assert "Traceback" not in error.text()
    assert dialog.isVisible()
    assert dialog.outcome is None
    assert button(dialog, "agree").isEnabled()


def test_closing_without_an_answer_stores_nothing(
    dialog: ConsentDialog, service: Service, settle: Callable[[], None]
) -> None:
    dialog.reject()  # Escape or the window's close button
    settle()
    assert dialog.outcome is None
    assert service.ledger().records == []


def shown_text(qtbot: QtBot, dialog: ConsentDialog, key: str) -> str:
    """The text of fact `key` as a person reads it, once it is on screen."""
    found = dialog.findChild(QLabel, f"notice_{key}")
    assert found is not None, key
    # Labels added to a shown window appear on the event loop's next turn.
    qtbot.waitUntil(found.isVisible, timeout=5_000)
    return " ".join(QTextDocumentFragment.fromHtml(found.text()).toPlainText().split())


def dialog_under(qtbot: QtBot, paths: Paths) -> tuple[ConsentDialog, Runner]:
    """The dialog over a service started after a policy was installed in `paths`."""
    runner = Runner(Service(paths, env={}))
    d = ConsentDialog(runner)
    qtbot.addWidget(d)
    d.show()
    qtbot.waitUntil(lambda: runner.pending == 0, timeout=10_000)
    return d, runner


def test_the_built_in_policy_says_plainly_that_nothing_leaves(
    qtbot: QtBot, dialog: ConsentDialog
) -> None:
    assert shown_text(qtbot, dialog, "uploads") == "What leaves this computer: Nothing."
    purpose = dialog.findChild(QLabel, "policy_purpose")
    assert purpose is not None
    assert "Under this policy nothing leaves this computer" in purpose.text()
    assert shown_text(qtbot, dialog, "recipients") == "Who receives it: No one."
    assert dialog.findChild(QLabel, "notice_controller") is None


def test_under_an_organisation_every_fact_of_its_notice_is_shown(
    qtbot: QtBot, private_home: Paths, tmp_path: Path
) -> None:
    org = generate(tmp_path / "keys", "x25519")
    policy = new_policy(org.bundle_public, "https://collector.example", notice=EXAMPLE_NOTICE)
    install_policy(private_home, sign_policy(policy, org.signing_private))
    dialog, runner = dialog_under(qtbot, private_home)
    try:
        expected = {
            "controller": "Example GmbH (privacy@example.com, Musterweg 1, 10115 Berlin)",
            "dpo": "dpo@example.com",
            "purposes": "Train models of office workflows; Improve keyboard shortcuts",
            "legal_basis": "Consent, GDPR Art. 6(1)(a); you may withdraw it at any time",
            "recipients": "Example GmbH research team; Hosting: Example Cloud (processor)",
            "processing_location": "Germany (EU)",
            "retention": "24 months after upload, then deleted",
        }
        for key, text in expected.items():
            assert text in shown_text(qtbot, dialog, key)
        performance = shown_text(qtbot, dialog, "performance")
        assert "not used to evaluate your individual performance" in performance
        assert "works agreement: Betriebsvereinbarung KI-Daten 2026/03" in performance
        assert "uploaded to https://collector.example" in shown_text(qtbot, dialog, "uploads")
        assert "waits 3 days for your review" in shown_text(qtbot, dialog, "hold_period")
        withheld = shown_text(qtbot, dialog, "withheld")
        assert "removed from what is uploaded: e-mail addresses, phone numbers" in withheld
        assert "release a detection" in withheld
        shown = [w for w in dialog.findChildren(QLabel) if w.objectName().startswith("notice_")]
        assert len(shown) == 12

        def nothing_cut_off() -> bool:
            return all(w.height() >= w.heightForWidth(w.width()) for w in shown)

        qtbot.waitUntil(nothing_cut_off, timeout=5_000)
        # And it all fits a 1366x768 screen, with room for a panel.
        assert dialog.height() <= 720
    finally:
        runner.stop()


def test_a_policy_signed_before_notices_warns_that_it_does_not_say(
    qtbot: QtBot, private_home: Paths
) -> None:
    old = read_signed_policy((VECTORS / "policy" / "v-no-notice.json").read_bytes())
    install_policy(private_home, old)
    dialog, runner = dialog_under(qtbot, private_home)
    try:
        assert "does not say who is responsible" in shown_text(qtbot, dialog, "notice")
        assert "uploaded to https://collector.example" in shown_text(qtbot, dialog, "uploads")
    finally:
        runner.stop()


def test_an_organisations_purpose_is_shown_as_written_never_as_markup(
    qtbot: QtBot, private_home: Paths, tmp_path: Path
) -> None:
    # The purpose is the organisation's free text: markup in it must not turn
    # into a link or an image the person could be led to click or load.
    hostile = "<a href='https://example.org/agree'>Click here</a><img src='https://example.org/t'>"
    org = generate(tmp_path / "keys", "x25519")
    policy = new_policy(
        org.bundle_public, "https://collector.example", notice=EXAMPLE_NOTICE, purpose=hostile
    )
    install_policy(private_home, sign_policy(policy, org.signing_private))
    dialog, runner = dialog_under(qtbot, private_home)
    try:
        purpose = dialog.findChild(QLabel, "policy_purpose")
        assert purpose is not None
        assert purpose.text() == hostile
        assert purpose.textFormat() == Qt.TextFormat.PlainText
    finally:
        runner.stop()


def test_typing_rhythm_is_asked_unticked_explained_and_needs_the_keys(
    qtbot: QtBot, private_home: Paths, tmp_path: Path
) -> None:
    org = generate(tmp_path / "keys", "x25519")
    policy = new_policy(org.bundle_public, "https://collector.example", categories=list(Category))
    install_policy(private_home, sign_policy(policy, org.signing_private))
    dialog, runner = dialog_under(qtbot, private_home)
    try:
        rhythm = box(dialog, Category.TYPING_RHYTHM)
        assert not rhythm.isChecked()
        assert "Typing rhythm (needs 'Keys you press')" in rhythm.text()
        explain = dialog.findChild(QLabel, "explain_typing_rhythm")
        assert explain is not None
        assert "exact timing leave, which can identify you" in explain.text()
        assert "unless you agree to 'Typing rhythm'" in shown_text(qtbot, dialog, "uploads")
        click(qtbot, rhythm)
        assert box(dialog, Category.KEYS).isChecked()
        click(qtbot, box(dialog, Category.KEYS))
        assert not rhythm.isChecked()
    finally:
        runner.stop()
