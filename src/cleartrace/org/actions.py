"""One bundle's kept events as actions: the rows of the dataset's actions table.

`derive_actions` is pure and deterministic (same events, same actions) and
vectorised with numpy: masks, cumulative sums and searchsorted over the
event columns; Python runs only over the key events, for the review's text
reconstruction, and once per action for its code string. The rules live with
the steps that apply them: action_pointer.py (clicks, double and triple
clicks, drags, scrolls), action_keys.py (type, hotkey, key), action_context.py
(episode, window, monitor), action_code.py (the pyautogui code).

Episodes are focus segments: 0 before the bundle's first FOCUS event, one
more at each FOCUS; `step` numbers the actions of an episode from 0 in the
order of their first events, except that a scroll made among the keys of a
typing run comes after that run's key actions (see `_places`). `app`,
`title` and the window geometry are the episode's FOCUS event's (null when
there is none, when the column was not kept, and for a geometry of all
zeros, which the device writes when it does not know it). `first_event` and
`last_event` are the `index` values of the action's first and last event:
lineage to the events table.

Raw and re-timed bundles (upload/retiming.py: the key events of a typing
run at one pace, each release right after its press, pointer events floored
to 1/60 s frames but never before the event they followed) give the same
actions apart from `time`, `end` and the event indices: typing runs are cut
the same way, text and hotkeys depend only on the order of presses and
modifiers, which re-timing keeps, focus and screen changes keep their place,
a scroll within a typing run is placed after the run, and pointer
thresholds are measured where re-timing puts pointer events
(action_pointer.frames), which it gives back unchanged.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cleartrace.categories import Category
from cleartrace.events import Kind
from cleartrace.org.action_code import BUTTON_NAMES, codes
from cleartrace.org.action_context import latest, normalise
from cleartrace.org.action_found import Act, Bools, Found, Ints, concat
from cleartrace.org.action_keys import Runs, key_actions
from cleartrace.org.action_pointer import clicks, frames, scrolls

__all__ = ["ACTION_NAMES", "ACTION_SCHEMA", "derive_actions"]

_TIME = pa.timestamp("us", tz="UTC")
ACTION_SCHEMA = pa.schema(
    [
        pa.field("time", _TIME, nullable=False),
        pa.field("end", _TIME, nullable=False),
        pa.field("episode", pa.int32(), nullable=False),
        pa.field("step", pa.int32(), nullable=False),
        pa.field("action", pa.string(), nullable=False),
        pa.field("app", pa.string()),
        pa.field("title", pa.string()),
        pa.field("window_x", pa.int32()),
        pa.field("window_y", pa.int32()),
        pa.field("window_width", pa.int32()),
        pa.field("window_height", pa.int32()),
        pa.field("x", pa.int32()),
        pa.field("y", pa.int32()),
        pa.field("x_norm", pa.float64()),
        pa.field("y_norm", pa.float64()),
        pa.field("to_x", pa.int32()),
        pa.field("to_y", pa.int32()),
        pa.field("to_x_norm", pa.float64()),
        pa.field("to_y_norm", pa.float64()),
        pa.field("button", pa.string()),
        pa.field("dx", pa.int32()),
        pa.field("dy", pa.int32()),
        pa.field("text", pa.string()),
        pa.field("keys", pa.string()),
        pa.field("code", pa.string(), nullable=False),
        pa.field("first_event", pa.int64(), nullable=False),
        pa.field("last_event", pa.int64(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
    ]
)

#: The `action` column's values, in `Act` order.
ACTION_NAMES = tuple(act.name.lower() for act in Act)
_CATEGORY = [
    *[Category.CLICKS.value] * 6,  # the clicks and the drag
    Category.SCROLL.value,
    *[Category.KEYS.value] * 3,  # type, hotkey, key
]
_POINTER = Act.SCROLL  # acts up to this one are pointer actions


def _int32(values: Ints, valid: Bools) -> pa.Array:
    return pa.array(values.astype(np.int32), pa.int32(), mask=~valid)


def derive_actions(events: pa.Table) -> pa.Table:
    """The actions of one bundle's kept events (EVENT_SCHEMA columns and `index`,
    in time order) as an ACTION_SCHEMA table, ordered by episode and step."""
    if events.num_rows == 0:
        return ACTION_SCHEMA.empty_table()
    t = events.column("t_ns").to_numpy()
    kind = events.column("kind").to_numpy()
    a, b, c, d = (events.column(name).to_numpy().astype(np.int64) for name in "abcd")
    typed, runs = key_actions(t, kind, a)
    fr = frames(t, runs.keys, runs.paced)
    found = concat(clicks(fr, kind, a, b, c), scrolls(fr, kind, a, b, c, d), typed)
    if len(found.first) == 0:
        return ACTION_SCHEMA.empty_table()
    pointer = found.act <= _POINTER
    focuses, focus = latest(kind, Kind.FOCUS, found.first)
    order = np.lexsort((_places(found.first, pointer, runs), focus))
    found = Found._make(column[order] for column in found)
    pointer, focus = pointer[order], focus[order]
    episode = focus + 1
    n = len(found.first)
    step = np.arange(n) - np.searchsorted(episode, episode, "left")
    return pa.Table.from_arrays(
        [
            *_times(t, found),
            pa.array(episode.astype(np.int32)),
            pa.array(step.astype(np.int32)),
            pc.take(pa.array(ACTION_NAMES), pa.array(found.act)),
            *_window(events, (a, b, c, d), focuses, focus),
            *_pointer(kind, a, b, c, d, found, pointer),
            pc.take(pa.array(BUTTON_NAMES, pa.string()), pa.array(found.button)),
            _int32(found.dx, found.act == Act.SCROLL),
            _int32(found.dy, found.act == Act.SCROLL),
            pa.array(found.text.tolist(), pa.string()),
            pa.array(found.keys.tolist(), pa.string()),
            codes(found),
            *(pc.take(events.column("index"), pa.array(p)) for p in (found.first, found.last)),
            pc.take(pa.array(_CATEGORY), pa.array(found.act)),
        ],
        schema=ACTION_SCHEMA,
    )


def _places(first: Ints, pointer: Bools, runs: Runs) -> Ints:
    """Where each action goes in its episode: at its first event, except that a
    pointer action (a scroll: a button press ends a run) that starts among the
    key events of a typing run goes right after the run's last. Re-timing packs
    a run's keys together and may put the pointer event anywhere from its place
    to the run's end; this way both orders give the same steps."""
    run_start, run_end = runs.first, runs.last
    run = np.searchsorted(run_start, first, "right") - 1
    ends = run_end[np.maximum(run, 0)] if len(run_end) else np.zeros(len(first), np.int64)
    inside = pointer & (run >= 0) & (first < ends)
    return np.where(inside, 2 * ends + 1, 2 * first)


def _times(t: Ints, found: Found) -> list[pa.Array]:
    return [pa.array(t[rows] // 1000, _TIME) for rows in (found.first, found.last)]


def _window(
    events: pa.Table, geometry: tuple[Ints, ...], focuses: Ints, focus: Ints
) -> list[pa.Array]:
    """app, title and the window geometry of each action's FOCUS event."""
    has = focus >= 0
    rows = focuses[np.maximum(focus, 0)] if len(focuses) else np.zeros(len(focus), np.int64)
    window = [g[rows] for g in geometry]
    known = has & ((window[0] != 0) | (window[1] != 0) | (window[2] != 0) | (window[3] != 0))
    taken = pa.array(rows, mask=~has)
    return [
        pc.take(events.column("app"), taken),
        pc.take(events.column("title"), taken),
        *(_int32(w, known) for w in window),
    ]


def _pointer(
    kind: Ints, a: Ints, b: Ints, c: Ints, d: Ints, found: Found, pointer: Bools
) -> list[pa.Array]:
    """x, y, their normalised forms, and the same for a drag's end."""
    screens, screen = latest(kind, Kind.SCREEN, found.first)
    screen = np.where(pointer, screen, -1)
    drag = found.act == Act.DRAG
    start = normalise(kind, a, b, c, d, screens, screen, found.x, found.y)
    stop = normalise(kind, a, b, c, d, screens, np.where(drag, screen, -1), found.to_x, found.to_y)
    return [
        _int32(found.x, pointer),
        _int32(found.y, pointer),
        pa.array(start.x, pa.float64(), mask=~start.known),
        pa.array(start.y, pa.float64(), mask=~start.known),
        _int32(found.to_x, drag),
        _int32(found.to_y, drag),
        pa.array(stop.x, pa.float64(), mask=~stop.known),
        pa.array(stop.y, pa.float64(), mask=~stop.known),
    ]
