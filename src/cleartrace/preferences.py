"""A person's preferences (not acts, so not ledgered): the pause hotkey, the
hold period within the bounds the policy sets, and how long a session runs
before the recorder ends it and begins the next (so the day can be reviewed
while recording goes on).

They live in `settings.json` in the home (0600, written all or nothing).
Qt-free: the tray's worker thread calls these with plain strings, and the
hotkey is kept in Qt's portable text ("Ctrl+Alt+Shift+P") and translated
for pynput's listener here.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cleartrace.consent.policy import Policy
from cleartrace.errors import UsageError
from cleartrace.paths import Paths, ensure_private_dirs, write_private

__all__ = [
    "DEFAULT_PAUSE_HOTKEY",
    "IDLE_MINUTES",
    "MIN_INPUTS",
    "MIN_INPUTS_MAX",
    "SESSION_MINUTES",
    "SESSION_MINUTES_MAX",
    "SESSION_MINUTES_MIN",
    "TESTING_IDLE_S",
    "TESTING_SESSION_S",
    "Boundaries",
    "boundaries",
    "hold_days",
    "load_pause_hotkey",
    "min_inputs",
    "pynput_hotkey",
    "save_hold_days",
    "save_min_inputs",
    "save_pause_hotkey",
    "save_session_minutes",
    "session_minutes",
    "settings_file",
]

log = logging.getLogger(__name__)

_VERSION = 1
_MAX_HOTKEY = 64

#: The tray's default (ui/hotkey.py DEFAULT_HOTKEY, in Qt's notation; a test keeps them equal).
DEFAULT_PAUSE_HOTKEY = "Ctrl+Alt+Shift+P"

_MODIFIERS = {"Ctrl": "<ctrl>", "Alt": "<alt>", "Shift": "<shift>", "Meta": "<cmd>"}
#: Qt's portable key names -> pynput's `Key` names.
_NAMED_KEYS = {
    "Space": "<space>",
    "Tab": "<tab>",
    "Backspace": "<backspace>",
    "Return": "<enter>",
    "Enter": "<enter>",
    "Ins": "<insert>",
    "Del": "<delete>",
    "Pause": "<pause>",
    "Print": "<print_screen>",
    "Home": "<home>",
    "End": "<end>",
    "Left": "<left>",
    "Up": "<up>",
    "Right": "<right>",
    "Down": "<down>",
    "PgUp": "<page_up>",
    "PgDown": "<page_down>",
}


#: A session ends after this many minutes by default, and the person may
#: choose from the bounds below: short enough to review during the day, long
#: enough that a session still shows a piece of work.
SESSION_MINUTES = 60
SESSION_MINUTES_MIN = 15
SESSION_MINUTES_MAX = 240
#: After this many minutes without input the session ends, and the next input
#: begins a new one (rather than a long silence inside one session).
IDLE_MINUTES = 5

#: A session with fewer inputs than this (key presses, clicks and scroll
#: steps; mouse moves and focus changes are not inputs) is not kept when it
#: ends: a tray started and stopped, or an hour away from the desk, leaves
#: nothing to review. 0 keeps every session.
MIN_INPUTS = 1
MIN_INPUTS_MAX = 1000

#: For tests only: seconds that replace the session length and the idle spell
#: (a test cannot wait 15 minutes for a boundary). Never set them otherwise.
TESTING_SESSION_S = "CLEARTRACE_TESTING_SESSION_S"
TESTING_IDLE_S = "CLEARTRACE_TESTING_IDLE_S"


@dataclass(frozen=True, slots=True)
class Boundaries:
    """When a running recorder ends its session, in seconds."""

    #: The longest a session runs.
    session_s: float
    #: The longest spell without input inside a session.
    idle_s: float
    #: Fewer inputs than this and the session is not kept when it ends.
    min_inputs: int = MIN_INPUTS


def settings_file(paths: Paths) -> Path:
    return paths.home / "settings.json"


def _read(paths: Paths) -> dict[str, Any]:
    """The settings as stored; {} when there are none or they cannot be read
    (a preference is not worth refusing to start over)."""
    try:
        data = json.loads(settings_file(paths).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable settings in %s: %s", paths.home, type(exc).__name__)
        return {}
    if not isinstance(data, dict) or data.get("v") != _VERSION:
        log.warning("ignoring settings of an unknown format in %s", paths.home)
        return {}
    return data


def load_pause_hotkey(paths: Paths) -> str:
    """The pause hotkey in Qt's portable text ("Ctrl+Alt+Shift+P"): the saved one,
    "" when the person chose none, `DEFAULT_PAUSE_HOTKEY` when nothing usable is saved."""
    value = _read(paths).get("pause_hotkey", DEFAULT_PAUSE_HOTKEY)
    if not isinstance(value, str):
        return DEFAULT_PAUSE_HOTKEY
    try:
        pynput_hotkey(value)
    except UsageError:
        log.warning("ignoring an unusable pause hotkey in the settings of %s", paths.home)
        return DEFAULT_PAUSE_HOTKEY
    return value


def _save(paths: Paths, **values: Any) -> None:
    ensure_private_dirs(paths)
    data = _read(paths)
    data.update(v=_VERSION, **values)
    with write_private(settings_file(paths), "settings file") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")


def hold_days(paths: Paths, policy: Policy) -> int:
    """Days a finished session waits for review: the person's choice where the
    policy's bounds allow it (a later policy may narrow them), else the policy's."""
    value = _read(paths).get("hold_days")
    if type(value) is int and policy.hold_days_min <= value <= policy.hold_days_max:
        return value
    return policy.hold_days


def save_hold_days(paths: Paths, days: int, policy: Policy) -> None:
    """Choose the hold period, within the policy's bounds.

    Raises:
        UsageError: outside the bounds, or the file cannot be written.
        DiskFull: no room for the file.
    """
    low, high = policy.hold_days_min, policy.hold_days_max
    if not low <= days <= high:
        raise UsageError(
            f"the policy '{policy.id}' lets you choose a hold period from {low} to {high} days"
        )
    _save(paths, hold_days=days)


def session_minutes(paths: Paths) -> int:
    """Minutes a session runs before the recorder begins the next: the
    person's choice within the bounds, else `SESSION_MINUTES`."""
    value = _read(paths).get("session_minutes")
    if type(value) is int and SESSION_MINUTES_MIN <= value <= SESSION_MINUTES_MAX:
        return value
    return SESSION_MINUTES


def save_session_minutes(paths: Paths, minutes: int) -> None:
    """Choose how long a session runs, within the bounds.

    Raises:
        UsageError: outside the bounds, or the file cannot be written.
        DiskFull: no room for the file.
    """
    if not SESSION_MINUTES_MIN <= minutes <= SESSION_MINUTES_MAX:
        raise UsageError(
            f"a session may run from {SESSION_MINUTES_MIN} to {SESSION_MINUTES_MAX} minutes; "
            f"choose a number in that range, e.g. {SESSION_MINUTES}"
        )
    _save(paths, session_minutes=minutes)


def min_inputs(paths: Paths) -> int:
    """The fewest inputs a session needs to be kept: the person's choice,
    else `MIN_INPUTS`."""
    value = _read(paths).get("min_inputs")
    if type(value) is int and 0 <= value <= MIN_INPUTS_MAX:
        return value
    return MIN_INPUTS


def save_min_inputs(paths: Paths, count: int) -> None:
    """Choose the fewest inputs a session needs to be kept (0: keep every one).

    Raises:
        UsageError: outside 0 to `MIN_INPUTS_MAX`, or the file cannot be written.
        DiskFull: no room for the file.
    """
    if not 0 <= count <= MIN_INPUTS_MAX:
        raise UsageError(
            f"choose from 0 (keep every session) to {MIN_INPUTS_MAX} inputs, "
            f"e.g. {MIN_INPUTS} (the default)"
        )
    _save(paths, min_inputs=count)


def _testing_seconds(env: Mapping[str, str], name: str) -> float | None:
    text = env.get(name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value > 0 else None


def boundaries(paths: Paths, env: Mapping[str, str] | None = None) -> Boundaries:
    """When the recorder of this home ends its sessions (read when it starts)."""
    env = os.environ if env is None else env
    session_s = _testing_seconds(env, TESTING_SESSION_S)
    idle_s = _testing_seconds(env, TESTING_IDLE_S)
    return Boundaries(
        session_s=60.0 * session_minutes(paths) if session_s is None else session_s,
        idle_s=60.0 * IDLE_MINUTES if idle_s is None else idle_s,
        min_inputs=min_inputs(paths),
    )


def save_pause_hotkey(paths: Paths, sequence: str) -> None:
    """Store the pause hotkey (portable text; "" for none) in settings.json, 0600,
    all or nothing.

    Raises:
        UsageError: not a usable hotkey (see `pynput_hotkey`), or the file
            cannot be written.
        DiskFull: no room for the file.
        HomeError: the home cannot be created.
    """
    pynput_hotkey(sequence)
    _save(paths, pause_hotkey=sequence)


def pynput_hotkey(sequence: str) -> str:
    """Qt's portable text of one key combination in pynput's `HotKey.parse`
    notation, which the tray's listener takes: "Ctrl+Alt+Shift+P" ->
    "<ctrl>+<alt>+<shift>+p"; "" stays "" (no hotkey).

    A hotkey needs Ctrl, Alt or Meta: a bare or shifted key is something people
    type, and every time they typed it recording would pause.

    Raises:
        UsageError: no such modifier, more than one key, or a key the
            listener cannot name.
    """
    if not sequence:
        return ""
    refuse = UsageError(
        "choose a key with Ctrl, Alt or the Windows key held, such as Ctrl+Alt+Shift+P; "
        "a letter, digit, F-key or arrow works"
    )
    if len(sequence) > _MAX_HOTKEY or not sequence.isprintable() or "," in sequence:
        raise refuse  # "," separates the keys of a multi-key sequence
    *modifiers, key = sequence.split("+")
    if not key or any(m not in _MODIFIERS for m in modifiers):
        raise refuse
    if not set(modifiers) & {"Ctrl", "Alt", "Meta"}:
        raise refuse
    if len(key) == 1 and key.isalnum() and key.isascii():
        name = key.lower()
    elif key in _NAMED_KEYS:
        name = _NAMED_KEYS[key]
    elif key[0] == "F" and key[1:].isdigit() and 1 <= int(key[1:]) <= 20:
        name = f"<{key.lower()}>"
    else:
        raise refuse
    return "+".join([*(_MODIFIERS[m] for m in modifiers), name])
