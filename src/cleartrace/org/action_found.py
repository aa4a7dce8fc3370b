"""The actions one derivation step found, as parallel numpy columns.

The pointer and key steps each return a `Found`; `actions.derive_actions`
concatenates them, orders them and adds the context. Positions (`first`,
`last`) are row numbers in the bundle's kept-event table, not yet its
`index` column. Which fields mean something depends on the action (x, y for
pointer actions, to_x, to_y for drags, dx, dy for scrolls, text for typing,
keys for hotkeys and keys); the others hold 0 or None and become nulls.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = ["Act", "Bools", "Found", "Ints", "concat", "empty", "found"]

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Objects = npt.NDArray[np.object_]


class Act(IntEnum):
    """The action kinds, in the order of their names in the `action` column."""

    CLICK = 0
    DOUBLE_CLICK = 1
    TRIPLE_CLICK = 2
    RIGHT_CLICK = 3
    MIDDLE_CLICK = 4
    DRAG = 5
    SCROLL = 6
    TYPE = 7
    HOTKEY = 8
    KEY = 9


class Found(NamedTuple):
    first: Ints
    last: Ints
    act: Ints
    x: Ints
    y: Ints
    to_x: Ints
    to_y: Ints
    button: Ints  # X button number, 0 for none
    dx: Ints
    dy: Ints
    text: Objects  # str or None
    keys: Objects  # str or None


def _zeros(n: int) -> Ints:
    return np.zeros(n, np.int64)


def _nones(n: int) -> Objects:
    return np.full(n, None, dtype=object)


def found(first: Ints, last: Ints, act: Ints, **fields: Ints | Objects) -> Found:
    """A `Found` of these columns, every one not given 0 (or None for text and keys)."""
    n = len(first)
    columns: dict[str, Ints | Objects] = {
        name: (_nones(n) if name in ("text", "keys") else _zeros(n)) for name in Found._fields[3:]
    }
    columns.update(fields)
    return Found(first.astype(np.int64), last.astype(np.int64), act.astype(np.int64), **columns)  # type: ignore[arg-type]


def empty() -> Found:
    return found(_zeros(0), _zeros(0), _zeros(0))


def concat(*parts: Found) -> Found:
    return Found(*(np.concatenate(columns) for columns in zip(*parts, strict=True)))
