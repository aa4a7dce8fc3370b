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

from cleartrace.org.action_found import Act, Found

__all__ = ["BUTTON_NAMES", "codes"]

#: X button numbers as pyautogui's button names (0: none).
BUTTON_NAMES = (None, "left", "middle", "right")

_CLICKS = {
    Act.CLICK: "click",
    Act.DOUBLE_CLICK: "doubleClick",
    Act.TRIPLE_CLICK: "tripleClick",
    Act.RIGHT_CLICK: "rightClick",
    Act.MIDDLE_CLICK: "middleClick",
}


def _scroll(dx: int, dy: int, x: int, y: int) -> str:
    parts = []
    if dy:
        parts.append(f"pyautogui.scroll({dy}, x={x}, y={y})")
    if dx:
        parts.append(f"pyautogui.hscroll({dx}, x={x}, y={y})")
    return "; ".join(parts)


def codes(found: Found) -> list[str]:
    """The code of every action in `found`, in its order."""
    out: list[str] = []
    columns = (
        found.act.tolist(),
        found.x.tolist(),
        found.y.tolist(),
        found.to_x.tolist(),
        found.to_y.tolist(),
        found.button.tolist(),
        found.dx.tolist(),
        found.dy.tolist(),
        found.text.tolist(),
        found.keys.tolist(),
    )
    for act, x, y, to_x, to_y, button, dx, dy, text, keys in zip(*columns, strict=True):
        if act == Act.TYPE:
            out.append(f"pyautogui.write({text!r})")
        elif act == Act.HOTKEY:
            out.append(f"pyautogui.hotkey({', '.join(map(repr, _split(keys)))})")
        elif act == Act.KEY:
            out.append(f"pyautogui.press({keys!r})")
        elif act == Act.SCROLL:
            out.append(_scroll(dx, dy, x, y))
        elif act == Act.DRAG:
            out.append(
                f"pyautogui.moveTo({x}, {y}); "
                f"pyautogui.dragTo({to_x}, {to_y}, button={BUTTON_NAMES[button]!r})"
            )
        else:
            out.append(f"pyautogui.{_CLICKS[Act(act)]}({x}, {y})")
    return out


def _split(keys: str) -> list[str]:
    """A hotkey's key names: modifiers never hold "+", the key may be it ("ctrl++")."""
    if keys.endswith("++"):
        return [*keys[:-2].split("+"), "+"]
    return keys.split("+")
