"""X keysyms as pyautogui key names, and which keys edit text, which are special.

The X names (review/keysyms.py, review/export.key_name) are what the device
records; pyautogui's names are what an agent presses, so the dataset speaks
those: enter, tab, esc, backspace, delete, arrows, home, end, pageup,
pagedown, f1..f24, and ctrl, alt, shift, win for the modifiers.
"""

from __future__ import annotations

import numpy as np

from cleartrace.events import char_of_keysym

__all__ = [
    "EDIT_KEYSYMS",
    "MODIFIER_GROUPS",
    "MODIFIER_KEYSYMS",
    "SPECIAL_KEYSYMS",
    "key_name",
]

#: Keys that correct text in a text field (the review's editor replays them):
#: BackSpace, Delete, the arrows, Home, End, and their keypad forms.
_EDIT_NAMES = {
    0xFF08: "backspace",
    0xFFFF: "delete",
    0xFF51: "left",
    0xFF52: "up",
    0xFF53: "right",
    0xFF54: "down",
    0xFF50: "home",
    0xFF57: "end",
    0xFF95: "home",  # KP_Home
    0xFF96: "left",
    0xFF97: "up",
    0xFF98: "right",
    0xFF99: "down",
    0xFF9C: "end",
    0xFF9F: "delete",  # KP_Delete
}
#: Keys that do something other than type or edit: a `key` action alone, part of a hotkey.
_SPECIAL_NAMES = {
    0xFF0D: "enter",  # Return
    0xFF8D: "enter",  # KP_Enter
    0xFF09: "tab",
    0xFE20: "tab",  # ISO_Left_Tab: Shift+Tab as X reports it
    0xFF1B: "esc",
    0xFF55: "pageup",  # Prior
    0xFF56: "pagedown",  # Next
    0xFF9A: "pageup",
    0xFF9B: "pagedown",
    0xFF63: "insert",
    0xFF9E: "insert",
    0xFF61: "printscreen",
    0xFF13: "pause",
    0xFF67: "apps",  # Menu
    **{0xFFBE + n: f"f{n + 1}" for n in range(24)},
}
#: Modifier keysyms by the pyautogui name a hotkey gives them (Meta counts as
#: Alt, Hyper as the Windows key, as desktops map them).
MODIFIER_GROUPS: dict[str, tuple[int, ...]] = {
    "ctrl": (0xFFE3, 0xFFE4),
    "alt": (0xFFE9, 0xFFEA, 0xFFE7, 0xFFE8),
    "shift": (0xFFE1, 0xFFE2),
    "win": (0xFFEB, 0xFFEC, 0xFFED, 0xFFEE),
}
#: Every key that only modifies or locks others: never an action of its own.
MODIFIER_KEYSYMS = np.array(
    [
        *(k for group in MODIFIER_GROUPS.values() for k in group),
        0xFE03,  # ISO_Level3_Shift (AltGr)
        0xFF7E,  # Mode_switch
        0xFE11,  # ISO_Level5_Shift
        0xFF7F,  # Num_Lock
        0xFF14,  # Scroll_Lock
        0xFFE6,  # Shift_Lock
        0xFFE5,  # Caps_Lock
    ],
    np.int64,
)
EDIT_KEYSYMS = np.array(sorted(_EDIT_NAMES), np.int64)
SPECIAL_KEYSYMS = np.array(sorted(_SPECIAL_NAMES), np.int64)

_NAMES = {**_EDIT_NAMES, **_SPECIAL_NAMES, 0x20: "space"}


def key_name(keysym: int) -> str:
    """The pyautogui name of a non-modifier key: its name for special and editing
    keys, else the character it types (letters in lower case, as a hotkey names
    them), else Ctrl+letter's control character as the letter."""
    name = _NAMES.get(keysym)
    if name is not None:
        return name
    if 0 < keysym <= 0x1A:
        return chr(0x60 + keysym)
    char = char_of_keysym(keysym)
    if char is None or 0xD800 <= ord(char) < 0xE000:  # no name, or not a character
        return f"0x{keysym:04x}"
    lower = char.lower()
    return lower if len(lower) == 1 else char
