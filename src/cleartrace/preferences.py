"""A person's preferences (not acts, so not ledgered): the pause hotkey and
the hold period, within the bounds the policy sets.

They live in `settings.json` in the home (0600, written all or nothing).
Qt-free: the tray's worker thread calls these with plain strings, and the
hotkey is kept in Qt's portable text ("Ctrl+Alt+Shift+P") and translated
for pynput's listener here.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from cleartrace.consent.policy import Policy
from cleartrace.errors import UsageError
from cleartrace.paths import Paths, ensure_private_dirs, write_private

__all__ = [
    "DEFAULT_PAUSE_HOTKEY",
    "hold_days",
    "load_pause_hotkey",
    "pynput_hotkey",
    "save_hold_days",
    "save_pause_hotkey",
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
