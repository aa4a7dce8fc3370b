"""What ClearTrace is doing, as one plain value: `cleartrace status --json`
prints it, the tray renders it, and a running recorder sends its own part of
it (`RecorderStatus`) over the control socket.

Plain data only (the bottom layer): actions/status.py collects it. No
captured content appears here but the focused application's class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cleartrace.categories import Category

__all__ = ["RecorderState", "RecorderStatus", "Status", "UploadStatus"]


class RecorderState(StrEnum):
    """What is recorded now, as the CLI and the tray name it."""

    RECORDING = "recording"
    PAUSED = "paused"
    #: No consent, or all of it withdrawn: no hook is installed.
    OFF = "off"
    #: Wayland, no display, a store error (`Status.reason` says which).
    CANNOT_RECORD = "cannot record"
    #: No recorder listens on this home's control socket.
    NOT_RUNNING = "not running"
    #: A recorder holds the socket but did not answer (`Status.recorder_error`).
    UNREACHABLE = "unreachable"


@dataclass(frozen=True, slots=True)
class RecorderStatus:
    """A running recorder's own state, as its control socket reports it."""

    pid: int
    state: RecorderState
    paused_until: str | None
    hooks: tuple[str, ...]
    granted: tuple[str, ...]
    session: str | None
    excluded_now: bool
    application: str | None
    #: Events per category name in the running session ("excluded_markers" too).
    counts: Mapping[str, int]
    #: The screen is locked: no session is open, and nothing typed is kept.
    screen_locked: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "state": self.state.value,
            "paused_until": self.paused_until,
            "hooks": list(self.hooks),
            "granted": list(self.granted),
            "session": self.session,
            "excluded_now": self.excluded_now,
            "application": self.application,
            "counts": dict(self.counts),
            "screen_locked": self.screen_locked,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RecorderStatus:
        """The form `to_json` wrote (a recorder of this version answered).

        Raises:
            KeyError, ValueError: not a recorder status; the caller names the socket.
        """
        return cls(
            pid=int(data["pid"]),
            state=RecorderState(data["state"]),
            paused_until=data.get("paused_until"),
            hooks=tuple(data.get("hooks", ())),
            granted=tuple(data.get("granted", ())),
            session=data.get("session"),
            excluded_now=bool(data.get("excluded_now", False)),
            application=data.get("application"),
            counts=dict(data.get("counts", {})),
            screen_locked=bool(data.get("screen_locked", False)),
        )


@dataclass(frozen=True, slots=True)
class UploadStatus:
    """The tray's background uploads (the CLI's status has none running)."""

    #: Approved sessions waiting to leave.
    queue: int = 0
    uploading: bool = False
    #: Why the last upload pass failed (the bundle stays queued), or None.
    problem: str | None = None
    #: Upload passes finished since the app started, and the sessions they sent.
    passes: int = 0
    sessions_uploaded: int = 0


@dataclass(frozen=True, slots=True)
class Status:
    """One snapshot of the state: consent, the recorder, the store, key storage,
    display support, the latest ledger alarm, and (where the home is open, as in
    the tray) the review queue and uploads."""

    state: RecorderState
    home: str
    version: str
    #: Why recording is impossible (state "cannot record"), else None.
    reason: str | None
    #: Whether the display allows recording, and what it said; None when it
    #: was not asked (the tray asks only when it would record and does not).
    can_record: bool | None
    display: str | None
    key_storage: dict[str, str] | None
    #: {category: "given" | "refused" | "withdrawn" | "not asked"}; empty: no store.
    consent: Mapping[str, str]
    #: Sessions in the store; None: no store yet.
    sessions: int | None
    ledger_alarm: Mapping[str, Any] | None
    recorder: RecorderStatus | None
    #: A recorder that did not answer, and why (state "unreachable").
    recorder_error: str | None = None
    #: The collector this device uploads to; None: not enrolled, nothing leaves.
    collector: str | None = None
    #: This device's fingerprint, the one `audit verify --expect-device` takes;
    #: None before the home holds a key.
    device: str | None = None
    # What follows is filled in where the home is open (the tray), else left
    # at its default: `cleartrace status` reads without the keys.
    #: Sessions waiting for review.
    pending_review: int = 0
    #: Events per category in the sessions recording at some time today.
    today_counts: Mapping[str, int] = field(default_factory=dict)
    #: Days a finished session waits for review before it approves itself.
    hold_days: int = 0
    uploads: UploadStatus = field(default_factory=UploadStatus)

    # -- what the recorder reports, or its absence ---------------------------------

    @property
    def hooks(self) -> tuple[str, ...]:
        return () if self.recorder is None else self.recorder.hooks

    @property
    def paused_until(self) -> str | None:
        return None if self.recorder is None else self.recorder.paused_until

    @property
    def application(self) -> str | None:
        return None if self.recorder is None else self.recorder.application

    @property
    def excluded_now(self) -> bool:
        return self.recorder is not None and self.recorder.excluded_now

    @property
    def session_counts(self) -> Mapping[str, int]:
        return {} if self.recorder is None else self.recorder.counts

    # -- consent ------------------------------------------------------------------------

    @property
    def granted(self) -> frozenset[Category]:
        return frozenset(c for c in Category if self.consent.get(c.value) == "given")

    @property
    def consent_asked(self) -> bool:
        return any(self.consent.get(c.value, "not asked") != "not asked" for c in Category)

    # -- uploads ---------------------------------------------------------------------------

    @property
    def upload_queue(self) -> int:
        return self.uploads.queue

    @property
    def uploading(self) -> bool:
        return self.uploads.uploading

    @property
    def upload_problem(self) -> str | None:
        return self.uploads.problem

    @property
    def upload_passes(self) -> int:
        return self.uploads.passes

    @property
    def sessions_uploaded(self) -> int:
        return self.uploads.sessions_uploaded

    def to_json(self) -> dict[str, Any]:
        """The form `cleartrace status --json` prints (docs/cli.md lists the keys)."""
        recorder: dict[str, Any] | None = None
        if self.recorder is not None:
            recorder = self.recorder.to_json()
        elif self.recorder_error is not None:
            recorder = {"state": RecorderState.UNREACHABLE.value, "detail": self.recorder_error}
        return {
            "version": self.version,
            "home": self.home,
            "display": {"can_record": self.can_record, "detail": self.display},
            "key_storage": None if self.key_storage is None else dict(self.key_storage),
            "consent": dict(self.consent),
            "sessions": self.sessions,
            "ledger_alarm": None if self.ledger_alarm is None else dict(self.ledger_alarm),
            "recorder": recorder,
            "state": self.state.value,
            "hooks": list(self.hooks),
            "reason": self.reason,
            "collector": self.collector,
            "device": self.device,
        }
