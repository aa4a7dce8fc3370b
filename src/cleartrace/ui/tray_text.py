"""What the tray says and offers for a `Status`: plain functions, no widgets.

The tray icon's tooltip and the status window show the same headline and
lines (`describe`); which menu actions make sense follows from the snapshot
alone (`enabled_actions`).
"""

from __future__ import annotations

from cleartrace.status import Status
from cleartrace.ui.texts import local_time

__all__ = ["ACTIONS", "describe", "enabled_actions", "sessions_phrase"]

#: The menu, in order: (objectName, text); None is a separator.
ACTIONS: tuple[tuple[str, str] | None, ...] = (
    ("pause15", "Pause for 15 minutes"),
    ("pause1h", "Pause for 1 hour"),
    ("pause", "Pause until resumed"),
    ("resume", "Resume"),
    ("forget15", "Forget the last 15 minutes"),
    None,
    ("review", "Review sessions…"),
    ("upload", "Upload approved sessions now"),
    ("captured", "What is captured now…"),
    None,
    ("consent", "Choose what is recorded…"),
    ("settings", "Settings…"),
    ("privacy", "Privacy policy"),
    ("history", "My consent history…"),
    ("withdraw", "Withdraw consent…"),
    None,
    ("quit", "Quit ClearTrace"),
)
_WINDOWS = {"review", "captured", "consent", "settings", "history"}
#: Category → (one, many): what its events are called in the tooltip.
_COUNT_WORDS = {
    "keys": ("key event", "key events"),
    "mouse_move": ("mouse move", "mouse moves"),
    "clicks": ("click event", "click events"),
    "scroll": ("scroll step", "scroll steps"),
    "app_focus": ("focus change", "focus changes"),
}


#: Counts that are markers, not recorded events: the running session's
#: exclusion markers and the excluded intervals of stored sessions.
_NOT_EVENTS = frozenset({"excluded_markers", "excluded_intervals"})


def enabled_actions(snap: Status | None) -> set[str]:
    """The actions that make sense now; with no snapshot (none yet, or the store
    failed) only the privacy policy and quitting."""
    if snap is None:
        return {"privacy", "quit"}
    on = _WINDOWS | {"privacy", "quit"}
    if snap.state == "recording":
        on |= {"pause15", "pause1h", "pause"}
    if snap.state == "paused":
        on.add("resume")
    if any(snap.today_counts.values()) or any(snap.session_counts.values()):
        on.add("forget15")
    if snap.granted:
        on.add("withdraw")
    if snap.collector is not None and not snap.uploading:
        on.add("upload")
    return on


def _headline(snap: Status) -> str:
    if snap.state == "recording":
        return "Recording"
    if snap.state == "paused":
        if snap.paused_until is None:
            return "Paused until you resume"
        return f"Paused until {local_time(snap.paused_until)}"
    if snap.state == "cannot record":
        return f"Cannot record: {snap.reason or 'unknown reason'}"
    if not snap.consent_asked:
        return "Off: choose what may be recorded"
    return "Off: nothing has consent"


def describe(snap: Status) -> tuple[str, list[str]]:
    """The headline and the detail lines the tooltip and the status window show."""
    counts = [
        f"{n:,} {_counted(name, n)}"
        for name, n in sorted(snap.today_counts.items())
        if n and name not in _NOT_EVENTS
    ]
    lines = [f"Today: {', '.join(counts)}" if counts else "Today: nothing recorded"]
    if snap.excluded_now:
        lines.append("Application: excluded, nothing is recorded in it")
    elif snap.application:
        lines.append(f"Application: {snap.application}")
    if snap.pending_review:
        lines.append(f"Awaiting review: {sessions_phrase(snap.pending_review)}")
    lines.append(_uploads(snap))
    if snap.upload_problem:
        lines.append(f"Upload problem: {snap.upload_problem}")
    return _headline(snap), lines


def _counted(name: str, n: int) -> str:
    one, many = _COUNT_WORDS.get(name, (name.replace("_", " "),) * 2)
    return one if n == 1 else many


def _uploads(snap: Status) -> str:
    """The uploads' line; a failed last attempt is never "nothing waiting"
    (the problem itself follows on the next line)."""
    if snap.collector is None:
        return "Uploads: not enrolled, nothing leaves this computer"
    if snap.uploading:
        return "Uploads: uploading approved sessions now…"
    failed = "the last attempt failed" if snap.upload_problem else None
    if snap.upload_queue:
        waiting = f"Uploads: {sessions_phrase(snap.upload_queue)} approved, waiting to upload"
        return f"{waiting}; {failed}" if failed else waiting
    return f"Uploads: {failed}" if failed else "Uploads: nothing waiting"


def sessions_phrase(n: int) -> str:
    return "1 session" if n == 1 else f"{n} sessions"
