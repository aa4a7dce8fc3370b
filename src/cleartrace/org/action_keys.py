"""Key actions: `type`, `hotkey` and `key`, from a bundle's key events.

Vectorised over the key events; a `type` action's text is the review's:
action_text.py replays its keys through review/keysyms.KeyDecoder and
review/editor.Editor as review/text.reconstruct does (the characters alone,
without replaying, where nothing but characters was typed).

The rules (docs/actions.md says the same for the dataset's readers):

- A *run* is a maximal sequence of key events with no button press, focus
  change or exclusion between two of them and gaps below
  events.TYPING_PAUSE_NS: the typing run that re-timing evens out, so runs
  are the same in raw and re-timed bundles.
- Each key press is classified by the modifiers held at it (a modifier is
  held from its press to its release; an exclusion releases them all):
  a printing key (a character, or a dead key) with at most Shift and AltGr
  held *types*; with Ctrl, Alt or the Windows key held it is a *hotkey*. An
  editing key (BackSpace, Delete, arrows, Home, End) with Alt or the Windows
  key held is a hotkey, otherwise it *edits*. A special key (Return, Tab,
  Escape, Page Up/Down, Insert, F-keys, ...) is a *key* action alone and a
  hotkey with any modifier held (so Shift+Tab is the hotkey "shift+tab").
  Modifiers, lock keys and keys without a pyautogui name are no action.
- A hotkey or key action ends typing. Within a run, a `type` action starts
  at its first typed character and takes every typing and editing press
  after it up to the next hotkey, key action or the run's end: corrections
  (BackSpace, Delete, arrows, Home/End, Shift selections, Ctrl+BackSpace and
  Ctrl+arrows by word) are applied to its text. An editing key before any
  character typed in its run's stretch is an action of its own: `key`
  ("backspace", "left") alone, `hotkey` with Shift or Ctrl ("shift+right").
- An action's events are its first press, the modifier presses right before
  it, and every key event after it in its run up to the next action's
  first event (so releases and modifier releases are its own).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cleartrace.events import TYPING_PAUSE_NS, Kind
from cleartrace.org.action_found import Act, Bools, Found, Ints, empty, found
from cleartrace.org.action_key_names import (
    EDIT_KEYSYMS,
    MODIFIER_GROUPS,
    MODIFIER_KEYSYMS,
    SPECIAL_KEYSYMS,
    key_name,
)
from cleartrace.org.action_pointer import BREAKS
from cleartrace.org.action_text import type_texts
from cleartrace.upload.retiming import PACE_US

__all__ = ["Runs", "key_actions"]

_EXCLUSIONS = np.array([Kind.EXCLUDED_START, Kind.EXCLUDED_END], np.uint8)


def _held(keysym: Ints, down: Bools, era: Ints, keys: tuple[int, ...]) -> Bools:
    """Whether any of `keys` is held at each key event: its latest event is a
    press, with no exclusion since (`era` counts exclusions)."""
    n = len(keysym)
    held = np.zeros(n, bool)
    at = np.arange(n)
    for key in keys:
        latest = np.maximum.accumulate(np.where(keysym == key, at, -1))
        safe = np.maximum(latest, 0)
        held |= (latest >= 0) & down[safe] & (era[safe] == era)
    return held


def _printing(keysym: Ints) -> Bools:
    """Keys that type a character (review/keysyms: char_of_keysym) or are dead keys."""
    return (
        ((keysym >= 0x20) & (keysym < 0x7F))
        | ((keysym >= 0xA0) & (keysym < 0x100))
        | ((keysym >= 0x1000000) & (keysym <= 0x110FFFF))
        | ((keysym >= 0xFE50) & (keysym < 0xFE94))
    )


class Runs(NamedTuple):
    """The bundle's typing runs: the rows of each one's first and last key event,
    the rows of all key events, and each key event's time as re-timing gives it
    (upload/retiming.py: the k-th of a run at its start + k * its pace)."""

    first: Ints
    last: Ints
    keys: Ints
    paced: Ints


def _paced(tk: Ints, run: Ints, run_first: Ints, run_last: Ints) -> Ints:
    """Each key event's time in its run re-timed (retiming.retime's own formula;
    tests/org/test_actions_context.py holds the two together)."""
    steps = np.maximum(run_last - run_first, 1)
    pace = np.minimum((tk[run_last] - tk[run_first]) // steps // 1000, PACE_US) * 1000
    k = np.arange(len(tk)) - run_first[run]
    paced: Ints = tk[run_first][run] + k * pace[run]
    return paced


def key_actions(t: Ints, kind: Ints, a: Ints) -> tuple[Found, Runs]:
    """The type, hotkey and key actions of one bundle's events (columns as numpy
    arrays), and its typing runs."""
    keys = np.flatnonzero((kind == Kind.KEY_DOWN) | (kind == Kind.KEY_UP))
    n = len(keys)
    if n == 0:
        return empty(), Runs(keys, keys, keys, keys)
    keysym, down, tk = a[keys], kind[keys] == Kind.KEY_DOWN, t[keys]
    excluded = np.isin(kind, _EXCLUSIONS)
    era = np.cumsum(excluded, dtype=np.int64)[keys]
    # Runs: split by a button press, focus change or exclusion, or a pause.
    broken = np.cumsum(np.isin(kind, BREAKS))[keys]
    new_run = np.ones(n, bool)
    new_run[1:] = (broken[1:] != broken[:-1]) | (tk[1:] - tk[:-1] >= TYPING_PAUSE_NS)
    run = np.cumsum(new_run) - 1
    run_first = np.flatnonzero(new_run)
    run_last = np.append(run_first[1:] - 1, n - 1)
    # Each press by what it does.
    mods = {name: _held(keysym, down, era, group) for name, group in MODIFIER_GROUPS.items()}
    shift, ctrl, alt_win = mods["shift"], mods["ctrl"], mods["alt"] | mods["win"]
    printing, edit = _printing(keysym), np.isin(keysym, EDIT_KEYSYMS)
    special = np.isin(keysym, SPECIAL_KEYSYMS)
    control_char = (keysym >= 1) & (keysym <= 0x1A)
    typed = down & printing & ~ctrl & ~alt_win
    edits = down & edit & ~alt_win
    hotkey = down & (
        (printing & (ctrl | alt_win)) | control_char | (special & (shift | ctrl | alt_win))
        | (edit & alt_win)
    )  # fmt: skip
    lone = down & special & ~(shift | ctrl | alt_win)
    runs = Runs(keys[run_first], keys[run_last], keys, _paced(tk, run, run_first, run_last))
    presses = np.flatnonzero(typed | edits | hotkey | lone)
    if len(presses) == 0:
        return empty(), runs
    is_typed, is_edit, own = typed[presses], edits[presses], (hotkey | lone)[presses]
    # Stretches between runs' edges and hotkey/key actions; typing starts at a stretch's
    # first typed character and takes the typing and editing after it.
    new_stretch = np.ones(len(presses), bool)
    new_stretch[1:] = (run[presses[1:]] != run[presses[:-1]]) | own[1:] | own[:-1]
    stretch_first = np.maximum.accumulate(np.where(new_stretch, np.arange(len(presses)), 0))
    typed_so_far = np.cumsum(is_typed)
    before = typed_so_far[stretch_first] - is_typed[stretch_first]
    member = (is_typed | is_edit) & (typed_so_far - before > 0)
    continues = np.zeros(len(presses), bool)
    continues[1:] = member[1:] & member[:-1] & ~new_stretch[1:]
    starts = presses[~continues]
    in_type = member[~continues]
    held_mod = (shift | ctrl | alt_win)[starts]
    act = np.where(
        in_type, Act.TYPE, np.where(hotkey[starts] | (edit[starts] & held_mod), Act.HOTKEY, Act.KEY)
    )
    # Each action from the modifier presses right before its first press to the
    # key event before the next action's (or its run's last).
    not_modifier_press = ~(down & np.isin(keysym, MODIFIER_KEYSYMS))
    latest_other = np.maximum.accumulate(np.where(not_modifier_press, np.arange(n), -1))
    previous_other = np.concatenate(([-1], latest_other[:-1]))
    lead = np.maximum(previous_other[starts] + 1, run_first[run[starts]])
    end = np.minimum(np.append(lead[1:] - 1, n - 1), run_last[run[starts]])
    texts = np.full(len(starts), None, dtype=object)
    action = (np.cumsum(in_type) - 1)[np.cumsum(~continues) - 1]
    texts[in_type] = type_texts(
        keysym, down, era, mods, presses[member], action[member], lead[in_type], end[in_type]
    )
    names = np.full(len(starts), None, dtype=object)
    for i in np.flatnonzero(~in_type).tolist():
        k = int(starts[i])
        held = [name for name, on in mods.items() if on[k] or (name == "ctrl" and control_char[k])]
        names[i] = "+".join([*held, key_name(int(keysym[k]))])
    return found(keys[lead], keys[end], act, text=texts, keys=names), runs
