"""From recorded key events to editing operations, as X and a Qt text field see them.

`KeyDecoder` keeps the keyboard state that decides what a press does: which
modifiers are held, Caps Lock, dead keys waiting for their base character. It
turns every press into one `Press` (an `Op` and, for typing, the character),
and pairs every release with its press.

What it relies on, checked against pynput 1.8 and Qt 6 under Xvfb:

- A printable key arrives as the character pynput reports, already shifted
  and AltGr'd by X, but *not* Caps Locked: pynput ignores the Lock modifier,
  so the decoder swaps the case of letters while Caps Lock is on (Shift with
  Caps Lock gives lower case, as X's ALPHABETIC key type does). Caps Lock's
  state when the recording started is unknown and taken as off.
- Dead keys arrive as X dead keysyms (0xfe50..0xfe93) or as their combining
  character (keysym 0x1000300 + ...). pynput also gives a dead key a
  *spacing* character (U+00B4 for dead_acute), which a capture layer must not
  record as the key: it could not be told from a typed one. A dead key waits
  for the next press: a character composes with it (Unicode NFC; when that
  is no single character, X drops the dead keys and types the character),
  the same dead key twice or a dead key and space give the spacing form X's
  Compose file gives, any other key cancels it and acts normally. Modifiers
  do not disturb it.
- A release may carry another keysym than its press: X reports the level at
  release time, so Shift let go first turns 'H' into 'h' and '!' into '1'.
- Ctrl+letter may come as the letter with Control held (X) or as a control
  character \\x01..\\x1a (other platforms).
"""

from __future__ import annotations

import unicodedata
from enum import IntEnum
from typing import NamedTuple

from cleartrace.events import char_of_keysym, keysym_of_char

__all__ = ["LINE_SEPARATOR", "KeyDecoder", "Op", "Press"]

#: What Shift+Return types in Qt: a line break inside the paragraph, which word
#: movement treats as a space (toPlainText() shows it as "\n").
LINE_SEPARATOR = "\u2028"


class Op(IntEnum):
    """What a key press does to a text field."""

    INSERT = 1  # Press.text at the cursor, replacing the selection
    BACKSPACE = 2
    DELETE = 3
    WORD_BACKSPACE = 4  # Ctrl+BackSpace
    WORD_DELETE = 5  # Ctrl+Delete
    LEFT = 6
    RIGHT = 7
    WORD_LEFT = 8
    WORD_RIGHT = 9
    HOME = 10  # start of the line
    END = 11
    DOC_START = 12  # Ctrl+Home
    DOC_END = 13
    UP = 14
    DOWN = 15
    SELECT_ALL = 16
    COPY = 17
    CUT = 18
    PASTE = 19
    CLICK = 20  # a mouse button press: the cursor goes to the end
    NOP = 21  # a key that does nothing to the text (F1, Escape, Ctrl+S, ...)
    # Not edits: the decoder's own state.
    MODIFIER = 30
    CAPS = 31  # Caps Lock toggled
    DEAD = 32  # a dead key now waits for its base character


class Press(NamedTuple):
    """One decoded key press.

    `select` is Shift held on a movement; `deads` are the presses of the dead
    keys this press used up, `composed` whether they are part of `text`.
    """

    op: Op
    select: bool = False
    text: str = ""
    deads: tuple[int, ...] = ()
    composed: bool = False


BACKSPACE, TAB, RETURN, DELETE = 0xFF08, 0xFF09, 0xFF0D, 0xFFFF
CAPS_LOCK = 0xFFE5

_SHIFT = 0x3  # Shift_L, Shift_R
_CTRL = 0xC  # Control_L, Control_R
_ALT = 0xFF0  # Alt, Meta, Super, Hyper: the key goes to a shortcut, not the text
_LEVEL = 0x1003  # Shift or AltGr: what X already applied to the character
_NOT_TYPING = _CTRL | _ALT
_MODIFIER_BITS = {
    0xFFE1: 0x1,  # Shift_L
    0xFFE2: 0x2,
    0xFFE3: 0x4,  # Control_L
    0xFFE4: 0x8,
    0xFFE7: 0x10,  # Meta_L
    0xFFE8: 0x20,
    0xFFE9: 0x40,  # Alt_L
    0xFFEA: 0x80,
    0xFFEB: 0x100,  # Super_L
    0xFFEC: 0x200,
    0xFFED: 0x400,  # Hyper_L
    0xFFEE: 0x800,
    0xFE03: 0x1000,  # ISO_Level3_Shift (AltGr)
    0xFF7E: 0x1000,  # Mode_switch
    0xFE11: 0x2000,  # ISO_Level5_Shift
    0xFF7F: 0,  # Num_Lock
    0xFF14: 0,  # Scroll_Lock
    0xFFE6: 0,  # Shift_Lock
}

# Keys that act the same with or without Ctrl, Ctrl turning them into words.
_MOVES = {
    0xFF51: (Op.LEFT, Op.WORD_LEFT),
    0xFF53: (Op.RIGHT, Op.WORD_RIGHT),
    0xFF50: (Op.HOME, Op.DOC_START),
    0xFF57: (Op.END, Op.DOC_END),
    0xFF52: (Op.UP, Op.NOP),  # Ctrl+Up scrolls the view in Qt
    0xFF54: (Op.DOWN, Op.NOP),
    # Page Up/Down move by a screenful, which is unknown: taken as the whole text.
    0xFF55: (Op.DOC_START, Op.NOP),
    0xFF56: (Op.DOC_END, Op.NOP),
}
_KEYPAD = {
    0xFF8D: RETURN,  # KP_Enter
    0xFF95: 0xFF50,  # KP_Home
    0xFF96: 0xFF51,
    0xFF97: 0xFF52,
    0xFF98: 0xFF53,
    0xFF99: 0xFF54,
    0xFF9A: 0xFF55,
    0xFF9B: 0xFF56,
    0xFF9C: 0xFF57,
    0xFF9E: 0xFF63,  # KP_Insert
    0xFF9F: DELETE,
}
_INSERT_KEY = 0xFF63
_CTRL_LETTERS = {"a": Op.SELECT_ALL, "c": Op.COPY, "x": Op.CUT, "v": Op.PASTE}

# X dead keysyms and the combining character each adds.
_DEAD_KEYSYMS = {
    0xFE50: "\u0300",  # dead_grave
    0xFE51: "\u0301",  # dead_acute
    0xFE52: "\u0302",  # dead_circumflex
    0xFE53: "\u0303",  # dead_tilde
    0xFE54: "\u0304",  # dead_macron
    0xFE55: "\u0306",  # dead_breve
    0xFE56: "\u0307",  # dead_abovedot
    0xFE57: "\u0308",  # dead_diaeresis
    0xFE58: "\u030a",  # dead_abovering
    0xFE59: "\u030b",  # dead_doubleacute
    0xFE5A: "\u030c",  # dead_caron
    0xFE5B: "\u0327",  # dead_cedilla
    0xFE5C: "\u0328",  # dead_ogonek
    0xFE5D: "\u0345",  # dead_iota
    0xFE5E: "\u3099",  # dead_voiced_sound
    0xFE5F: "\u309a",  # dead_semivoiced_sound
    0xFE60: "\u0323",  # dead_belowdot
    0xFE61: "\u0309",  # dead_hook
    0xFE62: "\u031b",  # dead_horn
    0xFE63: "\u0335",  # dead_stroke
    0xFE64: "\u0313",  # dead_abovecomma
    0xFE65: "\u0314",  # dead_abovereversedcomma
    0xFE66: "\u030f",  # dead_doublegrave
    0xFE67: "\u0325",  # dead_belowring
    0xFE68: "\u0331",  # dead_belowmacron
    0xFE69: "\u032d",  # dead_belowcircumflex
    0xFE6A: "\u0330",  # dead_belowtilde
    0xFE6B: "\u032e",  # dead_belowbreve
    0xFE6C: "\u0324",  # dead_belowdiaeresis
    0xFE6D: "\u0311",  # dead_invertedbreve
    0xFE6E: "\u0326",  # dead_belowcomma
    0xFE90: "\u0332",  # dead_lowline
    0xFE91: "\u030d",  # dead_aboveverticalline
    0xFE92: "\u0329",  # dead_belowverticalline
    0xFE93: "\u0338",  # dead_longsolidusoverlay
}
_COMBINING_KEYSYMS = range(0x1000300, 0x1000370)  # pynput's other spelling of a dead key
_DEAD_RANGE = range(0xFE50, 0xFE94)

# The dead key followed by space, and the dead key twice: en_US.UTF-8/Compose.
_DEAD_SPACE = {
    "\u0300": "`",
    "\u0301": "'",
    "\u0302": "^",
    "\u0303": "~",
    "\u0304": "\u00af",
    "\u0306": "\u02d8",
    "\u0307": "\u02d9",
    "\u0308": '"',
    "\u030a": "\u00b0",
    "\u030b": "\u02dd",
    "\u030c": "\u02c7",
    "\u0327": "\u00b8",
    "\u0328": "\u02db",
    "\u0345": "\u037a",
    "\u0326": ",",
    "\u0335": "/",
}
_DEAD_TWICE = {**_DEAD_SPACE, "\u0301": "\u00b4", "\u0308": "\u00a8"}


_PLAIN = {(op, select): Press(op, select) for op in Op for select in (False, True)}
_TYPED: dict[str, Press] = {}


def _plain(op: Op, select: bool = False) -> Press:
    return _PLAIN[op, select]


def _insert(char: str) -> Press:
    """The press that types `char` (shared: most presses are one of a few hundred)."""
    press = _TYPED.get(char)
    if press is None:
        press = _TYPED[char] = Press(Op.INSERT, text=char)
    return press


def dead_of_keysym(keysym: int) -> str | None:
    """The combining character a dead key adds, or None for any other key."""
    if keysym in _DEAD_RANGE:
        return _DEAD_KEYSYMS.get(keysym)
    if keysym in _COMBINING_KEYSYMS:
        return chr(keysym - 0x1000000)
    return None


def compose(base: str, marks: list[str]) -> str | None:
    """`base` under the combining `marks` (the last pressed nearest), if one character."""
    composed = unicodedata.normalize("NFC", base + "".join(reversed(marks)))
    return composed if len(composed) == 1 else None


class KeyDecoder:
    """The keyboard state across a whole session (it outlives focus changes)."""

    __slots__ = (
        "_caps_down",
        "_dead_marks",
        "_dead_presses",
        "_held",
        "caps",
        "ctrl_press",
        "mods",
    )

    def __init__(self) -> None:
        self.mods = 0
        self.caps = False
        self._caps_down = False
        self.ctrl_press = -1  # the latest Control press, for clipboard marks
        # keysym -> index of its latest press << 1 | 1 if a character at a Shift/AltGr level
        self._held: dict[int, int] = {}
        self._dead_marks: list[str] = []
        self._dead_presses: list[int] = []

    def reset(self) -> tuple[int, ...]:
        """Forget held keys (an excluded interval hid their releases).

        Returns the presses of dead keys that were waiting and are now dropped.
        """
        self.mods = 0
        self._caps_down = False
        self._held.clear()
        return self.drop_dead()

    def drop_dead(self) -> tuple[int, ...]:
        """Cancel waiting dead keys (the focus moved); returns their presses."""
        dropped = tuple(self._dead_presses)
        self._dead_marks.clear()
        self._dead_presses.clear()
        return dropped

    def press(self, index: int, keysym: int) -> Press:
        """Decode the press of `keysym`, event number `index`."""
        mods = self.mods
        if 0x20 <= keysym < 0x7F and not (mods & _NOT_TYPING or self.caps or self._dead_marks):
            self._held[keysym] = index << 1 | bool(mods & _LEVEL)  # most presses: plain typing
            return _insert(chr(keysym))
        bit = _MODIFIER_BITS.get(keysym)
        if bit is not None:
            self.mods |= bit
            if bit & _CTRL:
                self.ctrl_press = index
            self._held[keysym] = index << 1
            return _plain(Op.MODIFIER)
        if keysym == CAPS_LOCK:
            self._held[keysym] = index << 1
            if self._caps_down:  # auto-repeat: X toggles once per press and release
                return _plain(Op.MODIFIER)
            self._caps_down = True
            self.caps = not self.caps
            return _plain(Op.CAPS)
        char = char_of_keysym(keysym)
        self._held[keysym] = index << 1 | (char is not None and bool(mods & _LEVEL))
        dead = dead_of_keysym(keysym)
        if dead is not None and not mods & _NOT_TYPING:
            return self._dead(index, dead)
        if mods & _ALT:
            return self._with_deads(_plain(Op.NOP))
        if 0 < keysym <= 0x1A:  # Control+letter as a control character
            return self._with_deads(self._ctrl(chr(0x60 + keysym), keysym))
        if mods & _CTRL:
            return self._with_deads(self._ctrl(char, keysym))
        if char is not None:
            if self.caps and char.isalpha():
                swapped = char.swapcase()
                char = swapped if len(swapped) == 1 else char
            return self._typed(char)
        return self._with_deads(self._special(keysym))

    def release(self, keysym: int) -> int:
        """The index of the press this release ends, or -1 if none is held.

        Tries the same keysym, then the other case, then (Shift or AltGr let go
        first) the oldest character pressed at a shifted level.
        """
        bit = _MODIFIER_BITS.get(keysym)
        if bit:
            self.mods &= ~bit
        elif keysym == CAPS_LOCK:
            self._caps_down = False
        held = self._held.pop(keysym, -1)
        if held < 0:
            char = char_of_keysym(keysym)
            other = char.swapcase() if char is not None else ""
            if len(other) == 1 and other != char:
                held = self._held.pop(keysym_of_char(other), -1)
        if held < 0:
            shifted = [(h, k) for k, h in self._held.items() if h & 1]
            if shifted:
                held = self._held.pop(min(shifted)[1])
        return held >> 1 if held >= 0 else -1

    def _dead(self, index: int, mark: str) -> Press:
        if self._dead_marks == [mark]:  # the same dead key twice: its spacing form
            deads = (*self.drop_dead(), index)
            return Press(Op.INSERT, text=_DEAD_TWICE.get(mark, mark), deads=deads, composed=True)
        self._dead_marks.append(mark)
        self._dead_presses.append(index)
        return _plain(Op.DEAD)

    def _typed(self, char: str) -> Press:
        if not self._dead_marks:
            return _insert(char)
        marks = self._dead_marks[:]
        deads = self.drop_dead()
        if char == " " and len(marks) == 1:
            return Press(
                Op.INSERT, text=_DEAD_SPACE.get(marks[0], marks[0]), deads=deads, composed=True
            )
        composed = compose(char, marks)
        if composed is None:  # no such character: X drops the dead keys
            return Press(Op.INSERT, text=char, deads=deads)
        return Press(Op.INSERT, text=composed, deads=deads, composed=True)

    def _with_deads(self, press: Press) -> Press:
        """Any other key cancels waiting dead keys and then acts as usual."""
        if not self._dead_marks:
            return press
        return press._replace(deads=self.drop_dead())

    def _ctrl(self, char: str | None, keysym: int) -> Press:
        shift = bool(self.mods & _SHIFT)
        if char is not None:
            op = _CTRL_LETTERS.get(char) if not shift else None
            return _plain(op or Op.NOP)
        keysym = _KEYPAD.get(keysym, keysym)
        moves = _MOVES.get(keysym)
        if moves is not None:
            return _plain(moves[1], shift)
        if keysym == BACKSPACE:
            return _plain(Op.WORD_BACKSPACE)
        if keysym == DELETE:
            return _plain(Op.WORD_DELETE)
        if keysym == _INSERT_KEY and not shift:
            return _plain(Op.COPY)
        return _plain(Op.NOP)

    def _special(self, keysym: int) -> Press:
        shift = bool(self.mods & _SHIFT)
        keysym = _KEYPAD.get(keysym, keysym)
        moves = _MOVES.get(keysym)
        if moves is not None:
            return _plain(moves[0], shift)
        if keysym == BACKSPACE:
            return _plain(Op.BACKSPACE)
        if keysym == DELETE:
            return _plain(Op.CUT if shift else Op.DELETE)
        if keysym == RETURN:
            return _insert(LINE_SEPARATOR if shift else "\n")
        if keysym == TAB:
            return _insert("\t")
        if keysym == _INSERT_KEY and shift:
            return _plain(Op.PASTE)
        return _plain(Op.NOP)
