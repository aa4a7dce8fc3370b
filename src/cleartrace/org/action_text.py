"""The text of `type` actions: what the review's reconstruction shows for their keys.

Most typing is characters one after the other: printing keys with no
editing key among them, Caps Lock off and no dead key. Replayed, such an
action's text is its characters in order (X already applied Shift and AltGr
to the keysym), so it is built for all of them at once from the keysyms.
Every other action (corrections, dead keys, Caps Lock on) is replayed as
review/text.reconstruct replays a stream, with the review's own parts:
review/keysyms.KeyDecoder decodes each press, starting from the keyboard
state at the action's first key event (the modifiers held then, Caps Lock),
and review/editor.Editor applies what it does. tests/org/test_actions_text.py
holds both to reconstruct's text for the same keys.
"""

from __future__ import annotations

import numpy as np

from cleartrace.org.action_found import Bools, Ints
from cleartrace.org.action_key_names import MODIFIER_KEYSYMS
from cleartrace.review.editor import Editor
from cleartrace.review.keysyms import LINE_SEPARATOR, KeyDecoder, Op

__all__ = ["CAPS_LOCK", "caps_before", "type_texts"]

CAPS_LOCK = 0xFFE5
_STATE_KEYS = {"ctrl": 0xFFE3, "alt": 0xFFE9, "shift": 0xFFE1, "win": 0xFFEB}


def caps_before(keysym: Ints, down: Bools, era: Ints) -> Bools:
    """Whether Caps Lock is on before each key event and after the last, as
    KeyDecoder keeps it: every press toggles it but an auto-repeated one (pressed
    again without a release in between, an exclusion counting as a release);
    off when the bundle starts."""
    caps = np.flatnonzero(keysym == CAPS_LOCK)
    toggles = down[caps].copy()
    toggles[1:] &= ~down[caps[:-1]] | (era[caps[1:]] != era[caps[:-1]])
    flips = np.zeros(len(keysym) + 1, np.int64)
    flips[caps + 1] = toggles
    return (np.cumsum(flips) % 2).astype(bool)


def _plain(keysym: Ints) -> Bools:
    """Keys whose press types exactly their character, Caps Lock off: printing
    keysyms that are neither dead keys, combining marks nor surrogates."""
    code = np.where(keysym >= 0x1000000, keysym - 0x1000000, keysym)
    unicode = (keysym >= 0x1000000) & (keysym <= 0x110FFFF)
    return (
        ((keysym >= 0x20) & (keysym < 0x7F))
        | ((keysym >= 0xA0) & (keysym < 0x100))
        | (unicode & ~((code >= 0x300) & (code < 0x370)) & ~((code >= 0xD800) & (code < 0xE000)))
    )


def type_texts(
    keysym: Ints,
    down: Bools,
    era: Ints,
    held: dict[str, Bools],
    members: Ints,
    action: Ints,
    lead: Ints,
    end: Ints,
) -> list[str]:
    """The text of each type action; `members` are the key events of the presses that
    type or edit in them (in order), `action` the type action of each, `lead` and
    `end` each action's first and last key event."""
    n = len(lead)
    caps = caps_before(keysym, down, era)
    plain = _plain(keysym[members]) & ~caps[members]
    awkward = np.bincount(action[~plain], minlength=n) > 0
    texts: list[str] = [""] * n
    simple = ~awkward[action]
    code = keysym[members][simple]
    code = np.where(code >= 0x1000000, code - 0x1000000, code).astype("<u4")
    joined = code.tobytes().decode("utf-32-le")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(action[simple], minlength=n)))).tolist()
    for i in np.flatnonzero(~awkward).tolist():
        texts[i] = joined[bounds[i] : bounds[i + 1]]
    replayed = np.flatnonzero(awkward)
    if len(replayed):
        for i, text in zip(replayed.tolist(), _replay(keysym, down, caps, held, lead[replayed],
                                                      end[replayed]), strict=True):  # fmt: skip
            texts[i] = text
    return texts


def _valid(text: str) -> str:
    """`text` with any lone surrogate (a keysym no keyboard sends) as "?": the
    dataset's strings are UTF-8."""
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


def _replay(
    keysym: Ints, down: Bools, caps: Bools, held: dict[str, Bools], lead: Ints, end: Ints
) -> list[str]:
    """The text of each span of key events lead..end (inclusive), replayed as
    review/text.reconstruct replays a stream: KeyDecoder decodes each press with
    the keyboard state at the span's start (held modifiers pressed, Caps Lock
    set), and the review's Editor applies what it does. Releases of other keys
    than modifiers only pair presses, which the text does not need."""
    syms = keysym.tolist()
    pressed = down.tolist()
    state = np.isin(keysym, MODIFIER_KEYSYMS).tolist()
    texts: list[str] = []
    for first, last in zip(lead.tolist(), end.tolist(), strict=True):
        decoder, editor = KeyDecoder(), Editor()
        decoder.caps = bool(caps[first])
        for name, keysym_held in _STATE_KEYS.items():
            if held[name][first]:
                decoder.press(-1, keysym_held)
        for i in range(first, last + 1):
            if pressed[i]:
                press = decoder.press(i, syms[i])
                if press.op < Op.MODIFIER:  # MODIFIER, CAPS, DEAD: nothing to the text
                    editor.apply(editor.plan(press.op, press.select, press.text), ())
            elif state[i]:
                decoder.release(syms[i])
        texts.append(_valid("".join(editor.chars).replace(LINE_SEPARATOR, "\n")))
    return texts
