"""The first question ClearTrace asks: what may be recorded, category by category.

It appears before any hook exists, and first says what a person must know
before agreeing (`consent.notice_text.facts`: under an organisation, who is
responsible, why, who receives the data, where and for how long; under the
built-in policy, that nothing leaves the computer). Nothing is preselected, and every answer
is a ledger record: agreeing gives the ticked categories and refuses the rest,
"Refuse all" refuses every one. The dialog closes only once the service has
written the answer; an error stays in the dialog, in words.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Literal

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cleartrace.categories import DEPENDS_ON, Category
from cleartrace.consent.notice_text import facts
from cleartrace.consent.policy import Policy
from cleartrace.consent.state import ConsentStatus
from cleartrace.service import Service
from cleartrace.ui.runner import Runner
from cleartrace.ui.texts import CATEGORY_TEXTS, needs_note
from cleartrace.ui.widgets import BusyDialog, label

__all__ = ["ConsentDialog"]

Outcome = Literal["agreed", "refused"]


def _load(svc: Service) -> tuple[Policy, tuple[Category, ...]]:
    """The policy, and the categories it asks for that are not given already."""
    status = svc.consent()
    policy = svc.policy
    return policy, tuple(c for c in policy.categories if status[c] is not ConsentStatus.GIVEN)


def _agree(svc: Service, selected: frozenset[Category], asked: frozenset[Category]) -> None:
    """Refuse what was left unticked, then give what was ticked, then record.

    Refusals go first so that every answer is in the ledger before the first
    hook is installed (giving starts the recorder).
    """
    unselected = asked - selected
    if unselected:
        svc.refuse(unselected)
    svc.give(selected)
    svc.start()


def _refuse_all(svc: Service, asked: frozenset[Category]) -> None:
    svc.refuse(asked)


class ConsentDialog(BusyDialog):
    """One checkbox per category the policy asks for ("consent_<category>"), none
    ticked; "agree" gives the ticked ones, "refuse" refuses all.

    `outcome` is "agreed" or "refused" once the answer is stored. Closing the
    window without answering stores nothing and leaves ClearTrace off; it asks
    again next time.
    """

    def __init__(self, runner: Runner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self._boxes: dict[Category, QCheckBox] = {}
        self._asked: tuple[Category, ...] = ()
        self._loading = False
        self._loaded = False
        self.outcome: Outcome | None = None
        self.setWindowTitle("ClearTrace: what may be recorded?")
        self.setMinimumWidth(680)

        layout = QVBoxLayout(self)
        heading = QLabel(
            "<b>ClearTrace records how you work at this computer, only with your consent.</b>"
        )
        heading.setWordWrap(True)
        layout.addWidget(heading)
        self._purpose = label("policy_purpose", "Loading your organisation's policy…")
        self._purpose.setTextFormat(Qt.TextFormat.PlainText)  # the organisation's words, as written
        layout.addWidget(self._purpose)
        # One label per fact ("notice_<key>"), filled once the policy is loaded. Each
        # is a wrapped label in this layout (not a form): its height then follows
        # its width when the dialog is sized, so no fact is ever cut off.
        self._notice = QVBoxLayout()
        self._notice.setSpacing(2)
        layout.addLayout(self._notice)
        self._policy = label("policy_id", "")
        self._policy.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self._policy)
        choose = label(
            "choose",
            "Tick what may be recorded. Nothing is ticked for you, and withdrawing "
            "later is as easy as agreeing now.",
        )
        layout.addWidget(choose)
        self._categories = QVBoxLayout()
        layout.addLayout(self._categories)
        layout.addWidget(self._error)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self._refuse = QPushButton("Refuse all")
        self._refuse.setObjectName("refuse")
        self._refuse.clicked.connect(self._on_refuse)
        self._agree = QPushButton("Agree to the selected")
        self._agree.setObjectName("agree")
        self._agree.clicked.connect(self._on_agree)
        # No default button: Enter must never agree for someone.
        self._agree.setAutoDefault(False)
        self._refuse.setAutoDefault(False)
        buttons.addWidget(self._refuse)
        buttons.addWidget(self._agree)
        layout.addLayout(buttons)
        self._update_buttons()

    # -- loading ---------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        if not self._loaded and not self._loading:
            self._loading = True
            self._runner.call(_load, self._on_loaded, self._on_load_failed, owner=self)

    def _on_loaded(self, result: tuple[Policy, tuple[Category, ...]]) -> None:
        policy, asked = result
        self._loading, self._loaded = False, True
        self._asked = asked
        self._purpose.setText(policy.purpose)
        for fact in facts(policy):
            # The organisation's words are text, never markup of their own.
            shown = label(f"notice_{fact.key}", f"<b>{escape(fact.label)}:</b> {escape(fact.text)}")
            shown.setTextFormat(Qt.TextFormat.RichText)
            shown.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self._notice.addWidget(shown)
        self._policy.setText(
            f"Policy '{policy.id}', version {policy.version} (sha256 {policy.sha256[:12]}…)"
        )
        for category in asked:
            self._add_category(category, policy.mouse_move_hz)
        if not asked:
            self._show_error("You have already consented to everything this policy asks for.")
        self._update_buttons()
        self.adjustSize()  # it was sized before the categories existed
        # The new labels are shown on the next turn of the event loop; only then
        # do their wrapped heights count, and a window is not grown by them itself.
        QTimer.singleShot(0, self, self._fit)

    def _fit(self) -> None:
        """Grow to the height the wrapped texts need at this width: nothing cut off."""
        layout = self.layout()
        if layout is None:  # built in __init__; None only while being destroyed
            return
        layout.activate()
        needed = layout.totalHeightForWidth(self.width())
        if needed > self.height():
            self.resize(self.width(), needed)

    def _on_load_failed(self, message: str) -> None:
        self._loading = False
        self._purpose.setText("The policy could not be loaded, so nothing can be asked yet.")
        self._show_error(f"{message}. Close this window and open it again from the tray.")

    def _add_category(self, category: Category, mouse_move_hz: int) -> None:
        text = CATEGORY_TEXTS[category]
        caption = text.label
        note = needs_note(category)
        if note is not None and DEPENDS_ON[category] in self._asked:
            caption += f" ({note})"
        box = QCheckBox(caption)
        box.setObjectName(f"consent_{category.value}")
        box.setChecked(False)
        box.toggled.connect(lambda checked, c=category: self._on_toggled(c, checked))
        explanation = text.sentence(mouse_move_hz)
        detail = label(f"explain_{category.value}", explanation)
        # One line each: a wrapped label's height is not known when the dialog is
        # sized, and a clipped explanation would defeat its purpose.
        detail.setWordWrap(False)
        detail.setIndent(26)  # under the label, past the box
        box.setToolTip(explanation)
        self._categories.addWidget(box)
        self._categories.addWidget(detail)
        self._boxes[category] = box

    # -- choosing ----------------------------------------------------------------------

    def _on_toggled(self, category: Category, checked: bool) -> None:
        """Keep dependencies true: a title needs its application, so ticking titles
        ticks the application, and unticking the application unticks titles."""
        for needs, base in DEPENDS_ON.items():
            if checked and category is needs and base in self._boxes:
                self._boxes[base].setChecked(True)
            if not checked and category is base and needs in self._boxes:
                self._boxes[needs].setChecked(False)
        self._update_buttons()

    def _selected(self) -> frozenset[Category]:
        return frozenset(c for c, box in self._boxes.items() if box.isChecked())

    def _update_buttons(self) -> None:
        ready = self._loaded and not self._busy
        self._agree.setEnabled(ready and bool(self._selected()))
        self._refuse.setEnabled(ready and bool(self._asked))
        for box in self._boxes.values():
            box.setEnabled(not self._busy)

    def _on_agree(self) -> None:
        selected, asked = self._selected(), frozenset(self._asked)
        if selected:
            self._submit(lambda svc: _agree(svc, selected, asked), "agreed")

    def _on_refuse(self) -> None:
        asked = frozenset(self._asked)
        if asked:
            self._submit(lambda svc: _refuse_all(svc, asked), "refused")

    def _submit(self, act: Callable[[Service], None], outcome: Outcome) -> None:
        self._busy = True
        self._error.hide()
        self._update_buttons()
        self._runner.call(
            act,
            lambda _result: self._on_answered(outcome),
            self._on_failed,
            owner=self,
        )

    def _on_answered(self, outcome: Outcome) -> None:
        self._busy = False
        self.outcome = outcome
        self.done(
            QDialog.DialogCode.Accepted if outcome == "agreed" else QDialog.DialogCode.Rejected
        )

    def _on_failed(self, message: str) -> None:
        self._busy = False
        self._show_error(f"Your answer could not be stored: {message}")
        self._update_buttons()
