"""The person's settings: the hold period, the session length and the excluded
applications."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cleartrace import preferences
from cleartrace.actions._notify import poke_recorder
from cleartrace.capture.display import check_display
from cleartrace.capture.windows import open_window_classes as _window_classes
from cleartrace.consent import exclusions
from cleartrace.consent.exclusions import PersonalExclusions
from cleartrace.consent.signed_policy import active_policy
from cleartrace.home import Home
from cleartrace.paths import Paths

__all__ = [
    "Preferences",
    "current",
    "exclude",
    "exclusions_of",
    "hold_days",
    "include",
    "list_exclusions",
    "open_window_classes",
    "pause_hotkey",
    "set_hold_days",
    "set_min_inputs",
    "set_pause_hotkey",
    "set_session_minutes",
]


@dataclass(frozen=True, slots=True)
class Preferences:
    """The person's choices, with the bounds the policy sets on them."""

    hold_days: int
    hold_days_min: int
    hold_days_max: int
    #: The pause hotkey ("" for none).
    pause_hotkey: str
    #: How long a session runs before the recorder begins the next.
    session_minutes: int
    session_minutes_min: int = preferences.SESSION_MINUTES_MIN
    session_minutes_max: int = preferences.SESSION_MINUTES_MAX
    #: The fewest inputs (key presses, clicks, scroll steps) a session needs to be kept.
    min_inputs: int = preferences.MIN_INPUTS
    min_inputs_max: int = preferences.MIN_INPUTS_MAX


def current(paths: Paths) -> Preferences:
    """What is chosen now.

    Raises:
        PolicyRefused: the installed policy does not verify.
    """
    policy = active_policy(paths)
    return Preferences(
        preferences.hold_days(paths, policy),
        policy.hold_days_min,
        policy.hold_days_max,
        pause_hotkey(paths),
        preferences.session_minutes(paths),
        min_inputs=preferences.min_inputs(paths),
    )


def pause_hotkey(paths: Paths) -> str:
    """The pause hotkey in Qt's portable text ("" for none); needs no policy."""
    return preferences.load_pause_hotkey(paths)


def set_pause_hotkey(paths: Paths, sequence: str) -> None:
    """Choose the pause hotkey ("" for none); a running tray takes it up when restarted.

    Raises:
        UsageError: not a usable hotkey, or the file cannot be written.
        DiskFull: no room for the file.
    """
    preferences.save_pause_hotkey(paths, sequence)


def hold_days(paths: Paths) -> int:
    """Days a finished session waits for review (the person's choice within the
    policy's bounds, else the policy's).

    Raises:
        PolicyRefused: the installed policy does not verify.
    """
    return preferences.hold_days(paths, active_policy(paths))


def set_hold_days(paths: Paths, days: int) -> None:
    """Choose the hold period.

    Raises:
        UsageError: outside the policy's bounds.
    """
    preferences.save_hold_days(paths, days, active_policy(paths))


def set_session_minutes(paths: Paths, minutes: int) -> None:
    """Choose how long a session runs; a running recorder applies it from its next session.

    Raises:
        UsageError: outside the bounds, or the file cannot be written.
        DiskFull: no room for the file.
    """
    preferences.save_session_minutes(paths, minutes)


def set_min_inputs(paths: Paths, count: int) -> None:
    """Choose the fewest inputs a session needs to be kept (0: every session is
    kept); a running recorder applies it from its next session.

    Raises:
        UsageError: outside 0 to `preferences.MIN_INPUTS_MAX`, or the file
            cannot be written.
        DiskFull: no room for the file.
    """
    preferences.save_min_inputs(paths, count)


def _personal(home: Home) -> PersonalExclusions:
    # The names are sealed: reading them needs the keys.
    return PersonalExclusions.open(home.ledger, home.keys.master)


def exclusions_of(home: Home) -> list[tuple[str, str]]:
    """(application class, "default" or "personal"), from an open home."""
    return exclusions.list_exclusions(_personal(home), active_policy(home.paths))


def list_exclusions(paths: Paths) -> list[tuple[str, str]]:
    """(application class, "default" or "personal"); without a store only the
    policy's defaults, and nothing is created."""
    if not paths.db.exists():
        return exclusions.list_exclusions(None, active_policy(paths))
    home = Home.open(paths, create=False)
    try:
        return exclusions_of(home)
    finally:
        home.close()


def exclude(home: Home, app: str) -> str:
    """Exclude an application class (ledgered; a running recorder applies it now)."""
    done = exclusions.add_exclusion(home.ledger, _personal(home), app, active_policy(home.paths))
    poke_recorder(home.paths)
    return done


def include(home: Home, app: str) -> str:
    """Take a personal exclusion back (ledgered; a running recorder applies it now)."""
    done = exclusions.remove_exclusion(home.ledger, _personal(home), app, active_policy(home.paths))
    poke_recorder(home.paths)
    return done


def open_window_classes(env: Mapping[str, str]) -> list[str]:
    """The application classes of the windows open now (Settings offers them as
    exclusions); never their titles.

    Raises:
        DisplayUnavailable: no X display to ask (the message says why).
    """
    return _window_classes(check_display(env))
