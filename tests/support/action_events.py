"""A bundle's kept events written as a script, for the action derivation tests.

`Script` appends events as pynput and the context capture report them on X
(key events as keysyms, Shift let go before the key it shifted; a screen
layout as SCREEN followed by its MONITOR rows) and gives them as the table
`derive_actions` reads: the event schema plus each row's `index`.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from cleartrace.events import Kind, keysym_of_char
from cleartrace.upload.events_arrow import EVENT_SCHEMA
from cleartrace.upload.retiming import retime
from tests.support.keyboard import KEYSYM, SHIFTED

__all__ = ["MS", "Script", "retimed"]

MS = 1_000_000
#: 2026-12-01 08:00 UTC in wall-clock nanoseconds: bundles carry wall time.
START_NS = 1_796_112_000_000_000_000

_MORE_KEYS = {
    "F2": 0xFFBF,
    "super": 0xFFEB,
    "ISO_Left_Tab": 0xFE20,
    "ISO_Level3_Shift": 0xFE03,
}


def _keysym(name: str) -> int:
    return KEYSYM.get(name) or _MORE_KEYS.get(name) or keysym_of_char(name)


class Script:
    """Events in time order; every `add` is `step_ms` after the one before."""

    def __init__(self, step_ms: float = 50) -> None:
        self.rows: list[tuple[int, int, int, int, int, int, str | None, str | None]] = []
        self.t = START_NS
        self.step = int(step_ms * MS)

    def wait(self, ms: float) -> Script:
        self.t += int(ms * MS)
        return self

    def add(
        self, kind: Kind, a: int = 0, b: int = 0, c: int = 0, d: int = 0, *,
        app: str | None = None, title: str | None = None, same_time: bool = False,
    ) -> int:  # fmt: skip
        if not same_time:
            self.t += self.step
        self.rows.append((self.t, int(kind), a, b, c, d, app, title))
        return len(self.rows) - 1

    # Context.
    def screen(self, *monitors: tuple[int, int, int, int], root: tuple[int, int] = (0, 0)) -> None:
        width = root[0] or max(x + w for x, _, w, _ in monitors)
        height = root[1] or max(y + h for _, y, _, h in monitors)
        self.add(Kind.SCREEN, len(monitors), width, height, 100)
        for monitor in monitors:
            self.add(Kind.MONITOR, *monitor, same_time=True)

    def focus(self, app: str | None, title: str | None = None, geometry: Iterable[int] = ()) -> int:
        x, y, w, h = tuple(geometry) or (0, 0, 0, 0)
        return self.add(Kind.FOCUS, x, y, w, h, app=app, title=title)

    # Pointer.
    def move(self, x: int, y: int) -> int:
        return self.add(Kind.MOVE, x, y)

    def click(self, x: int, y: int, button: int = 1, *, to: tuple[int, int] | None = None) -> None:
        self.add(Kind.BUTTON_DOWN, x, y, button)
        if to is not None:
            self.move(*to)
        ux, uy = to or (x, y)
        self.add(Kind.BUTTON_UP, ux, uy, button)

    def scroll(self, x: int, y: int, dx: int = 0, dy: int = 0) -> int:
        return self.add(Kind.SCROLL, x, y, dx, dy)

    # Keys.
    def down(self, name: str) -> int:
        return self.add(Kind.KEY_DOWN, _keysym(name))

    def up(self, name: str) -> int:
        return self.add(Kind.KEY_UP, _keysym(name))

    def type(self, text: str) -> None:
        """Type `text` as a person on a US layout: Shift around capitals and symbols."""
        for ch in text:
            shifted = ch.isupper() or ch in SHIFTED
            if shifted:
                self.down("shift")
            self.add(Kind.KEY_DOWN, keysym_of_char(ch))
            if shifted:
                self.up("shift")
            self.add(Kind.KEY_UP, keysym_of_char(SHIFTED.get(ch, ch.lower())))

    def keys(self, *combos: str) -> None:
        """Tap each of `combos`; "ctrl+shift+t" holds the modifiers around the key."""
        for combo in combos:
            *modifiers, key = combo.split("+") if combo != "+" else ["+"]
            for m in modifiers:
                self.down(m)
            self.down(key)
            self.up(key)
            for m in reversed(modifiers):
                self.up(m)

    def table(self, drop: Iterable[int] = ()) -> pa.Table:
        """The events as `derive_actions` reads them; `drop` rows left out (their
        indices then missing from `index`, as after ingest's drop rules)."""
        gone = set(drop)
        kept = [(i, row) for i, row in enumerate(self.rows) if i not in gone]
        columns = list(zip(*(row for _, row in kept), strict=True)) or [()] * 8
        arrays = [pa.array(col, type=f.type) for col, f in zip(columns, EVENT_SCHEMA, strict=True)]
        arrays.append(pa.array([i for i, _ in kept], pa.int64()))
        return pa.Table.from_arrays(
            arrays, schema=EVENT_SCHEMA.append(pa.field("index", pa.int64()))
        )


def retimed(table: pa.Table) -> pa.Table:
    """`table` as a device sends it without `typing_rhythm` (upload/retiming.py),
    its `index` the rows' positions in the re-timed bundle."""
    even = retime(table.drop_columns(["index"]))
    return even.append_column("index", pa.array(range(even.num_rows), pa.int64()))
