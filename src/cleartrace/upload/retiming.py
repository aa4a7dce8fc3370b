"""Key timing evened out before events leave a device without `typing_rhythm` consent.

How long a person holds each key (dwell) and how long they take from one key
to the next (flight) identify them: published attacks reach a few per cent
equal error rate from 50 keystrokes, and coarser clocks barely help. A
pseudonymous subject id protects nobody whose rhythm travels with the data.
So unless the person consented to `typing_rhythm`, a bundle carries its key
events re-timed by `retime`:

- A *typing run* is a maximal sequence of key events (KEY_DOWN, KEY_UP) with
  no BUTTON_DOWN, FOCUS or exclusion marker between two of them and every gap
  below `events.TYPING_PAUSE_NS` (the same runs the dataset's `type` actions
  are cut by).
- Within a run of m key events starting at s (its first event's time, kept),
  the k-th gets ``s + k * step``, with ``step = min(PACE, (end - s) // (m - 1))``
  in whole microseconds. Every dwell and flight inside a run is the same, so
  they say nothing about the person.
- The step is capped at `PACE_US` rather than spread over the run's own end:
  a run spread over its span would still carry the typist's *average* speed,
  and average speed alone separates typists well
  (`benchmarks/identifiability.py` measures the attacker on both). A capped
  run only tells how many keys were pressed from its start, which the text
  already tells. Only runs typed faster than the pace keep a (shorter) span.
  What stays is where each run starts and the time of whatever ends it (a
  click, a change of window, the next run after a pause): one bound per run
  on how long it took, with a reaction or a pause in it. The benchmark's
  `run_starts` feature is that bound, worth 0.087 top-1 among 20 typists
  alone (chance 0.05).
- Every key but the modifiers is released right after a press: a release
  goes right after the earliest press of the run still open and takes its
  keysym (X names a release by the modifiers held at the time, so keysyms
  cannot pair them). Even at a fixed pace, the *order* of presses and
  releases tells how long a key was held and how far a typist rolls over to
  the next key, and that alone identified the typist of a 200-keystroke
  sample 85 % of the time among 20 (`benchmarks/identifiability.py`);
  paired, it is chance. Modifiers (Shift, Control, Alt, Super, AltGr, Lock
  keys) and presses keep their order, so modifiers still bracket the keys
  they modify and the review's reconstruction reads the same text: a
  release types nothing.
- Pointer events (MOVE, BUTTON_*, SCROLL) keep their path but lose sub-frame
  timing: floored to a 1/60 s grid (`FRAME_US` from the epoch), yet never put
  before the re-timed event that preceded them (a key, a focus change, an
  exclusion marker), so a click stays in the window and on the side of the
  typing it followed.
- Other kinds keep their time, except that a context event (a keyboard
  layout, screen or monitor) between two keys of one run takes the re-timed
  time of the key before it, so it stays between the same keys.
- The result is stably sorted by the new time; ties keep the original order.

Re-timing is idempotent (re-timed events re-time to themselves), so ingest
may apply the same function to raw events whose consent was later withdrawn.
Everything is done on whole columns (numpy), never per event in Python.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from cleartrace.events import RUN_BREAKS, TYPING_PAUSE_NS, Kind

__all__ = ["FRAME_US", "PACE_US", "raw_spans", "retime"]

#: The interval between consecutive key events of a re-timed run, at most:
#: 10 ms, faster than anybody types, so a run carries no typing speed.
PACE_US = 10_000
#: The frame grid pointer events are floored to: 1/60 s, in microseconds.
FRAME_US = 16_667

_KEYS = (int(Kind.KEY_DOWN), int(Kind.KEY_UP))
_POINTER = (int(Kind.MOVE), int(Kind.BUTTON_DOWN), int(Kind.BUTTON_UP), int(Kind.SCROLL))
_BREAKS = tuple(int(k) for k in RUN_BREAKS)
_CONTEXT = (int(Kind.SCREEN), int(Kind.MONITOR), int(Kind.LAYOUT))
#: Keysyms whose being held changes what other keys type: Shift_L … Hyper_R
#: (0xffe1 to 0xffee, Caps and Shift Lock included), Mode_switch, Num_Lock,
#: and the ISO level shifts and locks (AltGr is ISO_Level3_Shift).
_MODIFIER_RANGES = ((0xFFE1, 0xFFEE), (0xFF7E, 0xFF7F), (0xFE01, 0xFE13))

_I64 = npt.NDArray[np.int64]


def _runs(kt: _I64, breaks_before: _I64) -> tuple[_I64, _I64, _I64]:
    """Of key events at times `kt` (with the count of run breaks before each):
    each one's run number, and each run's first and last key (positions in `kt`)."""
    n = kt.size
    starts_run = np.ones(n, dtype=bool)
    starts_run[1:] = (np.diff(kt) >= TYPING_PAUSE_NS) | (np.diff(breaks_before) != 0)
    run = np.cumsum(starts_run) - 1
    first = np.flatnonzero(starts_run)
    return run, first, np.append(first[1:], n) - 1


def _retimed_keys(t: _I64, key_at: _I64, breaks_before: _I64) -> tuple[_I64, _I64]:
    """The new times of the key events at `key_at` and each one's run number."""
    kt = t[key_at]
    n = kt.size
    run, first, last = _runs(kt, breaks_before[key_at])
    steps = np.maximum(last - first, 1)
    step = np.minimum((kt[last] - kt[first]) // steps // 1000, PACE_US) * 1000
    k = np.arange(n, dtype=np.int64) - first[run]
    return kt[first][run] + k * step[run], run


def _is_modifier(keysym: _I64) -> npt.NDArray[np.bool_]:
    out = np.zeros(keysym.size, dtype=bool)
    for low, high in _MODIFIER_RANGES:
        out |= (keysym >= low) & (keysym <= high)
    return out


def _paired(kind: npt.NDArray[np.uint8], keysym: _I64, run: _I64) -> tuple[_I64, _I64]:
    """The order (positions among the key events) that puts every non-modifier
    release right after a press, and the keysyms the releases then carry.

    Within a run, a release of a non-modifier key while a press is open goes
    right after the earliest open press and takes its keysym (the k-th such
    release pairs with the k-th press). Releases are paired by
    their order, not by their keysym, because X names a release by the
    modifiers held when it happens: "H" pressed with Shift is released as
    "h" when Shift went up first, and which comes first is the typist's
    habit. A release with no press open (a key held from before the run)
    stays where it is. Releases type nothing, so the text read from the events is
    the same.
    """
    n = kind.size
    local = np.arange(n, dtype=np.int64)
    plain = ~_is_modifier(keysym)
    press = (kind == Kind.KEY_DOWN) & plain
    release = (kind == Kind.KEY_UP) & plain
    starts = np.ones(n, dtype=bool)
    starts[1:] = run[1:] != run[:-1]
    run = np.cumsum(starts) - 1  # runs numbered 0, 1, ... whatever the caller's numbers
    # Presses still open: the running count of presses less releases, held at
    # zero from below (a cumulative sum less its running minimum, per run).
    step = press.astype(np.int64) - release
    total = np.cumsum(step)
    count = total - (total - step)[starts][run]
    shift = 2 * n + 2  # keeps each run's running minimum to itself
    lowest = np.minimum.accumulate(np.minimum(count, 0) - run * shift) + run * shift
    open_after = count - lowest
    open_before = np.zeros(n, dtype=np.int64)
    open_before[1:] = open_after[:-1]
    open_before[starts] = 0
    matched = release & (open_before > 0)
    presses_before = np.cumsum(press) - press
    matched_before = np.cumsum(matched) - matched
    ordinal = matched_before - matched_before[starts][run]
    press_at = local[press][presses_before[starts][run][matched] + ordinal[matched]]
    place = 2 * local
    place[matched] = 2 * press_at + 1
    named = keysym.copy()
    named[matched] = keysym[press_at]
    order = np.argsort(place, kind="stable")
    return order, named[order]


def retime(events: pa.Table) -> pa.Table:
    """`events` (an `EVENT_SCHEMA` table in time order) with key timing evened
    out and pointer timing floored to frames, stably sorted by the new time.
    See the module docstring for the rules and why."""
    if events.num_rows == 0:
        return events
    t: _I64 = events.column("t_ns").to_numpy().astype(np.int64, copy=True)
    if (np.diff(t) < 0).any():  # a device writes in time order; anything else is put in it
        events = events.take(pa.array(np.argsort(t, kind="stable")))
        t = np.sort(t, kind="stable")
    kind = events.column("kind").to_numpy()
    is_key = np.isin(kind, _KEYS)
    is_pointer = np.isin(kind, _POINTER)
    key_at = np.flatnonzero(is_key)
    rows = np.arange(events.num_rows, dtype=np.int64)
    if key_at.size:
        breaks_before = np.cumsum(np.isin(kind, _BREAKS), dtype=np.int64)
        new_kt, run = _retimed_keys(t, key_at, breaks_before)
        a = events.column("a").to_numpy().astype(np.int64)
        paired, named = _paired(kind[key_at], a[key_at], run)
        rows[key_at] = key_at[paired]
        a = a[rows]
        a[key_at] = named
        t[key_at] = new_kt
        # A context event between two keys of one run follows the key before it.
        context_at = np.flatnonzero(np.isin(kind, _CONTEXT))
        before = np.searchsorted(key_at, context_at) - 1
        inside = (before >= 0) & (before + 1 < key_at.size)
        inside[inside] = run[before[inside]] == run[before[inside] + 1]
        t[context_at[inside]] = new_kt[before[inside]]
    pointer_at = np.flatnonzero(is_pointer)
    if pointer_at.size:
        frame = FRAME_US * 1000
        floor = t[pointer_at] // frame * frame
        # The latest new time of the non-pointer events up to each position.
        others = np.where(is_pointer, np.iinfo(np.int64).min, t)
        t[pointer_at] = np.maximum(floor, np.maximum.accumulate(others)[pointer_at])
    # Key rows move among the key positions (pairing); times stay with the
    # positions. Events already re-timed (ingest re-times what a device says
    # it re-timed) come back as they are, without a column copied.
    out = events
    if not np.array_equal(rows, np.arange(rows.size)):
        out = out.take(pa.array(rows))
    if not np.array_equal(t, events.column("t_ns").to_numpy()):
        out = out.set_column(0, events.schema.field(0), pa.array(t, pa.int64()))
    if key_at.size and not np.array_equal(a, out.column("a").to_numpy()):
        out = out.set_column(2, events.schema.field(2), pa.array(a, pa.int32()))
    if (np.diff(t) < 0).any():
        out = out.take(pa.array(np.argsort(t, kind="stable")))
    return out


def raw_spans(events: pa.Table, end_ns: int) -> tuple[pa.Array, pa.Array]:
    """Of re-timed `events` (in time order, as `retime` leaves them) of a
    session ending at `end_ns`: per event, the first and last time it may have
    had as captured. Re-timing keeps each run's start and what ends it, so:

    - a key event of a run: from the run's start to the time of whatever ends
      it (the next run break or the next run's start; `end_ns` for a run
      nothing follows); a context event between two keys of a run likewise;
    - a pointer event: [t, t + FRAME_US] (floored to a frame);
    - any other event: [t, t].

    What consent decides on an interval of capture time (a redaction) is
    judged on these spans: a key moved earlier by re-timing would otherwise
    escape the redaction of the interval it was typed in.
    """
    t: _I64 = events.column("t_ns").to_numpy().astype(np.int64, copy=True)
    kind = events.column("kind").to_numpy()
    low, high = t.copy(), t.copy()
    high[np.isin(kind, _POINTER)] += FRAME_US * 1000
    key_at = np.flatnonzero(np.isin(kind, _KEYS))
    if key_at.size:
        is_break = np.isin(kind, _BREAKS)
        run, first, last = _runs(t[key_at], np.cumsum(is_break, dtype=np.int64)[key_at])
        # Each run ends at the first run break after its last key or at the next
        # run's first key, whichever comes first; the last run may end at `end_ns`.
        n = t.size
        break_at = np.append(np.flatnonzero(is_break), n)
        after = break_at[np.searchsorted(break_at, key_at[last], side="right")]
        ends_at = np.minimum(after, np.append(key_at[first[1:]], n))
        padded = np.append(high, max(end_ns, int(t[-1])))
        start = t[key_at[first]]
        end = np.maximum(padded[ends_at], t[key_at[last]])
        low[key_at], high[key_at] = start[run], end[run]
        context_at = np.flatnonzero(np.isin(kind, _CONTEXT))
        before = np.searchsorted(key_at, context_at) - 1
        inside = (before >= 0) & (before + 1 < key_at.size)
        inside[inside] = run[before[inside]] == run[before[inside] + 1]
        within = run[before[inside]]
        low[context_at[inside]], high[context_at[inside]] = start[within], end[within]
    return pa.array(low, pa.int64()), pa.array(high, pa.int64())
