"""The row selection of coverage (consent/coverage.py) as Arrow masks.

Given what a device's ledger says (the step function of consented bits, the
latest withdrawal per category, the redactions of one bundle), `select_rows`
turns a bundle's event table into the rows that may stay, with vectorised
masks (pyarrow.compute: no per-event Python), and counts what went and why.
The ledger fold and the rules' order live in consent/coverage.py; this module
knows columns, bits and masks, not records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from cleartrace.categories import Category
from cleartrace.events import CATEGORY_OF_KIND, NUMBERS_OF_KIND, Kind

__all__ = [
    "BIT",
    "MARKER",
    "REASONS",
    "SPAN",
    "Outcome",
    "bits_of",
    "first_at_or_after",
    "select_rows",
    "step",
    "whole_outcome",
]

#: Why an event was dropped, in the order of attribution.
REASONS = ("deleted", "held", "superseded", "withdrawn", "redacted", "violation")
#: Reasons that drop a whole bundle's events, titles included.
_WHOLE = ("deleted", "held", "superseded")

#: Each category's bit in the masks and in the ledger fold's step function.
BIT = {category: 1 << i for i, category in enumerate(Category)}
#: Kinds this version does not know: never consented, so always a violation.
_UNKNOWN_BIT = 1 << len(Category)
_TITLE_BIT = BIT[Category.WINDOW_TITLES]
_MIN = -(2**63)
#: Optional columns of an event table: the first and last time (ns) an event
#: may have had as captured, where its `t_ns` was re-timed (upload/retiming.py).
#: Redactions are then judged on the span, not on `t_ns`; the columns are not kept.
SPAN = ("span_from", "span_to")


def bits_of(names: Iterable[str]) -> int:
    """The bits of the category names a record lists (a newer version's skipped)."""
    out = 0
    for name in names:
        try:
            out |= BIT[Category(name)]
        except ValueError:
            continue  # a category of a newer version: nothing here records it
    return out


def _kind_table(value_of: Mapping[Kind, int], unknown: int) -> pa.Array:
    """A 256-entry lookup indexed by the uint8 `kind` column."""
    values = [unknown] * 256
    for kind in Kind:
        values[int(kind)] = value_of[kind]
    return pa.array(values, pa.int64())


def _bit_of(kind: Kind) -> int:
    category = CATEGORY_OF_KIND[kind]
    return 0 if category is None else BIT[category]


#: kind -> its category's bit (0 for markers).
_KIND_BITS = _kind_table({k: _bit_of(k) for k in Kind}, _UNKNOWN_BIT).cast(pa.int32())


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one bundle contributes: the kept rows, and counts of what went and why.

    `events` are the kept rows sorted by time, titles removed where rules 4-6
    cover `window_titles`. `digest` identifies the selection (which rows,
    which titles), so a writer can tell whether a re-run changes a file.
    `violations` counts violating events per category name.
    """

    events: pa.Table = field(repr=False)
    dropped: dict[str, int]
    titles_removed: dict[str, int]
    violations: dict[str, int]
    digest: str

    @property
    def kept(self) -> int:
        return int(self.events.num_rows)


def whole_outcome(events: pa.Table, reason: str) -> Outcome:
    """Every event of a bundle dropped for `reason` (deleted, held, superseded)."""
    n = events.num_rows
    spans = [c for c in SPAN if c in events.column_names]
    return _outcome(
        events.slice(0, 0).drop_columns(spans), {reason: n}, {}, {}, [reason.encode(), n]
    )


def _withdrawn_by_kind(withdrawn: Mapping[int, int]) -> pa.Array:
    """kind -> the time at or before which its events are withdrawn (minimum: never)."""
    return _kind_table(
        {k: withdrawn.get(_bit_of(k), _MIN) if _bit_of(k) else _MIN for k in Kind},
        _MIN,
    )


def select_rows(
    events: pa.Table,
    *,
    changes: Sequence[tuple[int, int]],
    withdrawals: Mapping[int, int],
    redaction_steps: Sequence[tuple[int, int]],
    redactions: Sequence[tuple[int, int, int]] = (),
) -> Outcome:
    """The rows of `events` (`EVENT_SCHEMA`) that rules 4-7 of consent/coverage.py
    keep: `changes` the step function of consented bits, `withdrawals` each bit's
    latest withdrawal, `redaction_steps` the step function of redacted bits.
    Where `events` has the `SPAN` columns, an event is redacted when any of
    `redactions` ((bits, start ns, end ns), closed) of its category overlaps
    its span, since its `t_ns` is not when it was captured."""
    events = _sorted(events)
    t = events.column("t_ns").combine_chunks()
    kind = events.column("kind").combine_chunks()
    kind_bits = pc.take(_KIND_BITS, kind)
    marker = pc.equal(kind_bits, 0)
    thresholds = pc.take(_withdrawn_by_kind(withdrawals), kind)
    withdrawn = pc.less_equal(t, thresholds)
    redacted_bits = _step(t, redaction_steps)
    if SPAN[0] in events.column_names:
        in_redaction = _overlapping(events, kind_bits, redactions)
        events = events.drop_columns(list(SPAN))
    else:
        in_redaction = _has(redacted_bits, kind_bits)
    redacted = pc.and_not(in_redaction, withdrawn)
    allowed_bits = _step(t, changes)
    outside = pc.and_not(pc.invert(_has(allowed_bits, kind_bits)), marker)
    violation = pc.and_not(outside, pc.or_(withdrawn, redacted))
    drop = pc.or_(pc.or_(withdrawn, redacted), violation)
    keep = pc.invert(drop)

    title = events.column("title").combine_chunks()
    is_focus = pc.equal(kind, int(Kind.FOCUS))
    has_title = pc.and_(pc.and_(keep, pc.is_valid(title)), is_focus)
    title_withdrawn = pc.and_(
        has_title, pc.less_equal(t, pa.scalar(withdrawals.get(_TITLE_BIT, _MIN)))
    )
    title_redacted = pc.and_not(
        pc.and_(has_title, _has(redacted_bits, _TITLE_BIT)), title_withdrawn
    )
    title_outside = pc.and_(has_title, pc.invert(_has(allowed_bits, _TITLE_BIT)))
    title_violation = pc.and_not(title_outside, pc.or_(title_withdrawn, title_redacted))
    title_drop = pc.or_(pc.or_(title_withdrawn, title_redacted), title_violation)

    dropped = {
        "withdrawn": _count(withdrawn),
        "redacted": _count(redacted),
        "violation": _count(violation),
    }
    titles = {
        "withdrawn": _count(title_withdrawn),
        "redacted": _count(title_redacted),
        "violation": _count(title_violation),
    }
    # Rule 7: a field only its own kind carries, never on another kind.
    stray = _stray_fields(events, kind, keep, is_focus)
    title_drop = pc.or_(title_drop, stray.title)
    titles["violation"] += _count(stray.title)

    violations = _by_category(kind, violation)
    for name, count in stray.violations.items():
        violations[name] = violations.get(name, 0) + count
    if titles["violation"]:
        violations[Category.WINDOW_TITLES.value] = titles["violation"]
    if titles["withdrawn"] or titles["redacted"] or titles["violation"]:
        events = _cleared(events, "title", title_drop)
    if stray.app_count:
        events = _cleared(events, "app", stray.app)
    for column, mask in stray.numbers:
        events = _cleared(events, column, mask)
    kept = events.filter(keep)
    identity = [_bitmap(keep), _bitmap(title_drop), _bitmap(stray.app), stray.digest]
    return _outcome(kept, dropped, titles, violations, identity)


def _overlapping(
    events: pa.Table, kind_bits: pa.Array, redactions: Sequence[tuple[int, int, int]]
) -> pa.Array:
    """Per event, whether a redaction of its category overlaps its `SPAN`: one
    vectorised pass per redaction (a bundle has few)."""
    start = events.column(SPAN[0]).combine_chunks()
    end = events.column(SPAN[1]).combine_chunks()
    out = pa.repeat(pa.scalar(False), events.num_rows)
    for bits, first, last in redactions:
        overlaps = pc.and_(pc.less_equal(start, last), pc.greater_equal(end, first))
        out = pc.or_(out, pc.and_(overlaps, _has(kind_bits, bits)))
    return out


#: kind -> how many of the integer fields a..d it carries (the rest must be 0).
_NUMBERS = _kind_table(NUMBERS_OF_KIND, 0)
#: The name a marker's violations are reported under (markers have no category).
MARKER = "excluded"


@dataclass(frozen=True, slots=True)
class _Stray:
    """Fields of kept rows their kind does not carry: masks, and violations by category."""

    app: pa.Array
    title: pa.Array
    numbers: list[tuple[str, pa.Array]]
    violations: dict[str, int]
    digest: bytes

    @property
    def app_count(self) -> int:
        return _count(self.app)


def _stray_fields(events: pa.Table, kind: pa.Array, keep: pa.Array, is_focus: pa.Array) -> _Stray:
    """Rule 7. An application name is `app_focus` data and a title `window_titles`
    data only on a focus event; on any other kind (a marker included) they are
    content its own category does not cover, however it is consented. The one
    other text is a keyboard layout's name, which travels in `app` on a layout
    event (`keys` data, covered with it). The integer fields a kind does not
    use must be 0, and a marker carries none."""
    other = pc.and_(keep, pc.invert(is_focus))
    named = pc.and_(other, pc.not_equal(kind, int(Kind.LAYOUT)))
    app = pc.and_(named, pc.is_valid(events.column("app").combine_chunks()))
    title = pc.and_(other, pc.is_valid(events.column("title").combine_chunks()))
    used = pc.take(_NUMBERS, kind)
    numbers = []
    any_number = pa.repeat(pa.scalar(False), len(kind))
    for i, column in enumerate("abcd"):
        mask = pc.and_(
            pc.and_(keep, pc.less_equal(used, i)),
            pc.not_equal(events.column(column).combine_chunks(), 0),
        )
        if _count(mask):
            numbers.append((column, mask))
            any_number = pc.or_(any_number, mask)
    violations = {
        name: count
        for name, count in (
            (Category.APP_FOCUS.value, _count(app)),
            *_by_category(kind, any_number, marker=MARKER).items(),
        )
        if count
    }
    digest = b"".join(_bitmap(mask) + column.encode() for column, mask in numbers)
    return _Stray(app, title, numbers, violations, digest)


def _cleared(events: pa.Table, column: str, mask: pa.Array) -> pa.Table:
    """`events` with `column` emptied (null, or 0 for the integer fields) where `mask` is set."""
    index = events.schema.get_field_index(column)
    values = events.column(column).combine_chunks()
    empty = pa.scalar(None if pa.types.is_string(values.type) else 0, values.type)
    return events.set_column(index, events.schema.field(index), pc.if_else(mask, empty, values))


def _sorted(events: pa.Table) -> pa.Table:
    """The events in time order (a stable sort, only when they are not already)."""
    t = events.column("t_ns")
    if events.num_rows < 2:
        return events
    t = t.combine_chunks()
    steps = pc.subtract(t.slice(1), t.slice(0, len(t) - 1))
    if pc.min(steps).as_py() >= 0:
        return events
    return events.take(pc.sort_indices(events, sort_keys=[("t_ns", "ascending")]))


def _has(bits: pa.Array, wanted: pa.Array | int) -> pa.Array:
    return pc.not_equal(pc.bit_wise_and(bits, wanted), 0)


def _count(mask: pa.Array) -> int:
    value = pc.sum(mask.cast(pa.int64())).as_py()
    return int(value or 0)


def _bitmap(mask: pa.Array) -> bytes:
    """A mask as bytes that identify it (bit-packed, independent of chunking and offset)."""
    packed = pa.concat_arrays([mask]) if mask.offset else mask
    bits = packed.buffers()[1]
    if bits is None:
        return b""
    out = bytearray(bits.to_pybytes()[: (len(packed) + 7) // 8])
    if len(packed) % 8:  # the bits past the end are unspecified
        out[-1] &= (1 << (len(packed) % 8)) - 1
    return bytes(out)


def _by_category(kind: pa.Array, mask: pa.Array, *, marker: str = "unknown") -> dict[str, int]:
    if not _count(mask):
        return {}
    out: dict[str, int] = {}
    for row in pc.value_counts(kind.filter(mask)).to_pylist():
        try:
            category = CATEGORY_OF_KIND[Kind(row["values"])]
            name = marker if category is None else category.value
        except ValueError:
            name = "unknown"
        out[name] = out.get(name, 0) + int(row["counts"])
    return out


def _outcome(
    events: pa.Table,
    dropped: Mapping[str, int],
    titles: Mapping[str, int],
    violations: dict[str, int],
    identity: Sequence[object],
) -> Outcome:
    digest = hashlib.sha256()
    for part in identity:
        digest.update(part if isinstance(part, bytes) else repr(part).encode())
        digest.update(b"\0")
    return Outcome(
        events=events,
        dropped={r: int(dropped.get(r, 0)) for r in REASONS},
        titles_removed={r: int(titles.get(r, 0)) for r in REASONS if r not in _WHOLE},
        violations=violations,
        digest=digest.hexdigest(),
    )


def first_at_or_after(t: pa.Array, value: int) -> int:
    """Binary search in the sorted column `t`: the first row whose time is >= value."""
    lo, hi = 0, len(t)
    while lo < hi:
        mid = (lo + hi) // 2
        if t[mid].as_py() < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


def step(t: pa.Array, points: Sequence[tuple[int, int]]) -> pa.Array:
    """The step function `points` (a `Coverage.changes`) at every time of `t`,
    in any order: what the audit's coverage proof evaluates on dataset rows,
    which someone may have reordered."""
    if len(t) < 2 or pc.min(pc.subtract(t.slice(1), t.slice(0, len(t) - 1))).as_py() >= 0:
        return _step(t, points)
    order = pc.sort_indices(t)
    return pc.take(_step(pc.take(t, order), points), pc.sort_indices(order))


def _step(t: pa.Array, points: Sequence[tuple[int, int]]) -> pa.Array:
    """A step function evaluated at every (sorted) time: the value of the last
    point at or before it, 0 before the first. Built run-end encoded, so its
    cost is one pass over the rows plus a binary search per point."""
    n = len(t)
    if n == 0:
        return pa.array([], pa.int32())
    ends: list[int] = []
    values: list[int] = []
    pos, current = 0, 0
    for when, value in points:
        row = first_at_or_after(t, when)
        if row > pos:
            ends.append(row)
            values.append(current)
            pos = row
        current = value
    if n > pos:
        ends.append(n)
        values.append(current)
    encoded = pa.RunEndEncodedArray.from_arrays(
        pa.array(ends, pa.int32()), pa.array(values, pa.int32())
    )
    return pc.run_end_decode(encoded)
