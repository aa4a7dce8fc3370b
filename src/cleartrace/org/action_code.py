"""Each action as one line of pyautogui code, the action space agents are trained in.

Clicks as `pyautogui.click(x, y)` (doubleClick, tripleClick, rightClick,
middleClick), a drag as `pyautogui.moveTo(x, y); pyautogui.dragTo(x, y,
button='left')`, a scroll as `pyautogui.scroll(dy, x=.., y=..)` and
`pyautogui.hscroll(dx, x=.., y=..)` (positive: up and right, as X's buttons
4 and 7), typing as `pyautogui.write('text')` with the text as a Python
literal (repr), a hotkey as `pyautogui.hotkey('ctrl', 's')`, a key as
`pyautogui.press('enter')`. Every string is valid Python.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cleartrace.org.action_found import Act, Found

__all__ = ["BUTTON_NAMES", "codes"]

#: X button numbers as pyautogui's button names (0: none).
BUTTON_NAMES = (None, "left", "middle", "right")

#: pyautogui's function for each act up to the drag (the others are not clicks).
_CLICK_NAMES = pa.array(
    ["click", "doubleClick", "tripleClick", "rightClick", "middleClick", *[""] * 5]
)


def _join(*parts: pa.Array | str) -> pa.Array:
    """The element-wise concatenation of string arrays and constant strings."""
    return pc.binary_join_element_wise(*parts, "")


def _pointer_codes(found: Found) -> pa.Array:
    """The code of every action as if it were a pointer action (vectorised)."""
    x, y, to_x, to_y, dx, dy = (
        pc.cast(pa.array(column), pa.string())
        for column in (found.x, found.y, found.to_x, found.to_y, found.dx, found.dy)
    )
    act = pa.array(found.act)
    at = _join(", x=", x, ", y=", y, ")")
    vertical = _join("pyautogui.scroll(", dy, at)
    horizontal = _join("pyautogui.hscroll(", dx, at)
    has_dx, has_dy = pa.array(found.dx != 0), pa.array(found.dy != 0)
    scroll = pc.if_else(
        has_dx,
        pc.if_else(has_dy, _join(vertical, "; ", horizontal), horizontal),
        vertical,
    )
    button = pc.take(pa.array(BUTTON_NAMES, pa.string()), pa.array(found.button))
    drag = _join(
        "pyautogui.moveTo(", x, ", ", y, "); pyautogui.dragTo(", to_x, ", ", to_y,
        ", button='", pc.fill_null(button, ""), "')",
    )  # fmt: skip
    click = _join("pyautogui.", pc.take(_CLICK_NAMES, act), "(", x, ", ", y, ")")
    return pc.if_else(
        pc.equal(act, Act.SCROLL), scroll, pc.if_else(pc.equal(act, Act.DRAG), drag, click)
    )


def codes(found: Found) -> pa.Array:
    """The code of every action in `found`, in its order: pointer actions built on
    whole columns, key actions one by one (a text's Python literal is repr's)."""
    keyed = found.act >= Act.TYPE
    rows = np.flatnonzero(keyed)
    mine: list[str] = []
    columns = (found.act[rows].tolist(), found.text[rows].tolist(), found.keys[rows].tolist())
    for act, text, keys in zip(*columns, strict=True):
        if act == Act.TYPE:
            mine.append(f"pyautogui.write({text!r})")
        elif act == Act.HOTKEY:
            mine.append(f"pyautogui.hotkey({', '.join(map(repr, _split(keys)))})")
        else:
            mine.append(f"pyautogui.press({keys!r})")
    pointer = np.flatnonzero(~keyed)
    both = pa.concat_arrays(
        [_pointer_codes(Found._make(c[pointer] for c in found)), pa.array(mine, pa.string())]
    )
    place = np.empty(len(keyed), np.int64)
    place[pointer] = np.arange(len(pointer))
    place[rows] = len(pointer) + np.arange(len(rows))
    return both.take(pa.array(place))


def _split(keys: str) -> list[str]:
    """A hotkey's key names: modifiers never hold "+", the key may be it ("ctrl++")."""
    if keys.endswith("++"):
        return [*keys[:-2].split("+"), "+"]
    return keys.split("+")
