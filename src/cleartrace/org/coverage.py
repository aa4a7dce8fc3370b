"""What a device's ledger lets the organisation keep of its events, and why the rest goes.

`coverage_of(records)` folds one device's verified ledger (oldest first) into
a `Coverage`; `Coverage.apply(events, ...)` turns a bundle's event table into
the rows the dataset may hold, with vectorised masks (pyarrow.compute: no
per-event Python). The rules, in the order a dropped event is attributed to
them (docs/dataset.md has them for readers of the dataset):

1. **deleted** — a `session.deleted` record for the session drops every event
   of it, markers included.
2. **held** — a `session.held` record made after the bundle was built (its
   acknowledgement was lost, so the device still let the person hold it)
   drops every event of the bundle.
3. **superseded** — of a session in several bundles (the same lost
   acknowledgement, then a redaction and a new bundle), only the bundle with
   the greatest ledger head stays (`Coverage.with_bundles`).
4. **withdrawn** — a `consent.withdrawn` of a category at time T drops every
   event of that category captured at or before T, in any session of the
   device: the organisation stops using data whose consent was withdrawn.
   Events captured after a later `consent.given` stay.
5. **redacted** — a `session.redacted` record made after the bundle was built
   (its seq is greater than the bundle's `ledger.head.seq`) drops the
   session's events of its categories inside [interval.start, interval.end].
   Redactions made before are already absent from the bundle.
6. **violation** — an event outside a consented, unpaused interval of its
   category. A category is consented from a `consent.given` naming it until
   a `consent.withdrawn` (or `consent.refused`) naming it; recording is paused
   from `recording.paused` until `recording.resumed` (`until` is only the
   planned end). Such events should not exist; they are dropped and reported.

7. **fields outside their kind** — `app` (app_focus data) and `title`
   (window_titles data) belong on focus events only, and each kind uses only
   its own integer fields (a key event `a`, a move `a`, `b`, ...). Anything
   else on an event (an application name on a key event, any content on a
   marker) was not written by the recorder: the field is cleared, the event
   kept as rules 1-6 decide, and the field reported as a violation of its
   category (markers' numbers under `MARKER`).

Markers (`EXCLUDED_START`/`EXCLUDED_END`) belong to no category and carry no
content: they stay unless their session is deleted. `session.shredded` is not
a deletion (the device removed its local copy after upload). A window title
is data of the `window_titles` category riding on an `app_focus` event: the
same rules 4-6 decide whether the title stays; when it may not, the event is
kept (if its own category allows) with its title removed.

Record times have milliseconds; an event exactly at a record's time is on
the record's side (consented from `given`, withdrawn at `withdrawn`, paused
from `paused`). Records are applied in ledger order: a record whose clock
went backwards takes effect at the previous record's time. The device's
uploader folds its ledger with this same `coverage_of` (upload/consented.py),
so it never sends what these rules would drop for a withdrawal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cleartrace.categories import Category
from cleartrace.events import CATEGORY_OF_KIND, NUMBERS_OF_KIND, Kind

__all__ = [
    "COVERAGE_VERSION",
    "REASONS",
    "Coverage",
    "Outcome",
    "Redacted",
    "coverage_of",
    "first_at_or_after",
    "time_ns",
]

#: Bumped when the rules change, so that re-runs re-evaluate every bundle.
COVERAGE_VERSION = 3
#: Why an event was dropped, in the order of attribution.
REASONS = ("deleted", "held", "superseded", "withdrawn", "redacted", "violation")
#: Reasons that drop a whole bundle's events, titles included.
_WHOLE = ("deleted", "held", "superseded")

_BIT = {category: 1 << i for i, category in enumerate(Category)}
#: Kinds this version does not know: never consented, so always a violation.
_UNKNOWN_BIT = 1 << len(Category)
_TITLE_BIT = _BIT[Category.WINDOW_TITLES]
_MIN = -(2**63)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _kind_table(value_of: Mapping[Kind, int], unknown: int) -> pa.Array:
    """A 256-entry lookup indexed by the uint8 `kind` column."""
    values = [unknown] * 256
    for kind in Kind:
        values[int(kind)] = value_of[kind]
    return pa.array(values, pa.int64())


def _bit_of(kind: Kind) -> int:
    category = CATEGORY_OF_KIND[kind]
    return 0 if category is None else _BIT[category]


#: kind -> its category's bit (0 for markers).
_KIND_BITS = _kind_table({k: _bit_of(k) for k in Kind}, _UNKNOWN_BIT).cast(pa.int32())


def time_ns(text: str) -> int:
    """Nanoseconds since the epoch of a ledger time ('2026-12-02T10:15:00.123Z').

    Raises:
        ValueError: not a UTC time.
    """
    if not text.endswith("Z"):
        raise ValueError("not a UTC time")
    when = datetime.fromisoformat(text[:-1] + "+00:00")
    return (when - _EPOCH) // timedelta(microseconds=1) * 1000


def _bits(names: Iterable[str]) -> int:
    out = 0
    for name in names:
        try:
            out |= _BIT[Category(name)]
        except ValueError:
            continue  # a category of a newer version: nothing here records it
    return out


@dataclass(frozen=True, slots=True)
class Redacted:
    """A `session.redacted` record: categories (bits) removed in [start_ns, end_ns]."""

    seq: int
    session: str
    bits: int
    start_ns: int
    end_ns: int


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


@dataclass(frozen=True, slots=True)
class Coverage:
    """One device's ledger folded into what the rules need.

    `changes` is the step function of the categories (bits) that may be
    recorded: from each (time_ns, bits) until the next; none before the first.
    `withdrawn` is the time of the latest withdrawal per category bit.
    """

    deleted: frozenset[str]
    withdrawn: Mapping[int, int]
    redactions: tuple[Redacted, ...]
    changes: tuple[tuple[int, int], ...]
    #: Digest of `changes` and `withdrawn`, shared by every bundle's `key`.
    device_digest: str = ""
    #: session -> seq of its latest `session.held` record.
    held: Mapping[str, int] = field(default_factory=dict)
    #: session -> (head seq, base seq) of the newest bundle holding it (set by
    #: ingest, `with_bundles`): an older bundle of a session is superseded.
    newest: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    #: The category bits consented after the last record, pauses aside.
    consented: int = 0

    def consented_now(self) -> frozenset[Category]:
        """The categories consented after the last record (a pause takes none back)."""
        return frozenset(c for c, bit in _BIT.items() if self.consented & bit)

    def withdrawn_at(self) -> dict[Category, int]:
        """Each withdrawn category's latest withdrawal, at the time the rules take it."""
        return {c: self.withdrawn[bit] for c, bit in _BIT.items() if bit in self.withdrawn}

    def with_bundles(self, bundles: Iterable[tuple[str | None, int, int]]) -> Coverage:
        """This coverage knowing every (session, head seq, base seq) bundle of the
        device; the newest bundle of a session is the one with the greatest head,
        then the greatest base.

        A session normally leaves in one bundle. It leaves twice only when the
        collector stored a bundle whose acknowledgement was lost and the person
        then redacted the session: the device bundles what is left again, and
        that newer bundle is the session as the person wants it.
        """
        newest: dict[str, tuple[int, int]] = {}
        for session, head_seq, base_seq in bundles:
            if session is not None:
                newest[session] = max((head_seq, base_seq), newest.get(session, (-1, -1)))
        return replace(self, newest=newest)

    def _whole(self, session: str | None, head_seq: int, base_seq: int) -> str | None:
        """The reason every event of such a bundle goes, or None."""
        if session is None:
            return None
        if session in self.deleted:
            return "deleted"
        if self.held.get(session, -1) > head_seq:
            # Held after the bundle was built: its acknowledgement was lost (else
            # the session could not be held), and the person does not want it out.
            return "held"
        if self.newest.get(session, (head_seq, base_seq)) > (head_seq, base_seq):
            return "superseded"
        return None

    def key(self, session: str | None, head_seq: int, base_seq: int = 0) -> str:
        """A digest of everything that decides the rows of a bundle of `session`
        built at ledger `head_seq`: equal keys, equal rows."""
        state = {
            "v": COVERAGE_VERSION,
            "device": self.device_digest or _digest(self.changes, self.withdrawn),
            "whole": self._whole(session, head_seq, base_seq),
            "redacted": [
                [r.bits, r.start_ns, r.end_ns] for r in self._redactions(session, head_seq)
            ],
        }
        return hashlib.sha256(json.dumps(state, separators=(",", ":")).encode()).hexdigest()

    def _redactions(self, session: str | None, head_seq: int) -> list[Redacted]:
        return [r for r in self.redactions if r.session == session and r.seq > head_seq]

    def apply(
        self, events: pa.Table, *, session: str | None, head_seq: int, base_seq: int = 0
    ) -> Outcome:
        """Drop what the rules cover from one bundle's events (`EVENT_SCHEMA` table)."""
        n = events.num_rows
        whole = self._whole(session, head_seq, base_seq)
        if whole is not None:
            return _outcome(events.slice(0, 0), {whole: n}, {}, {}, [whole.encode(), n])
        events = _sorted(events)
        t = events.column("t_ns").combine_chunks()
        kind = events.column("kind").combine_chunks()
        kind_bits = pc.take(_KIND_BITS, kind)
        marker = pc.equal(kind_bits, 0)
        thresholds = pc.take(self._withdrawn_by_kind(), kind)
        withdrawn = pc.less_equal(t, thresholds)
        redacted_bits = _step(t, _redaction_steps(self._redactions(session, head_seq)))
        redacted = pc.and_not(_has(redacted_bits, kind_bits), withdrawn)
        allowed_bits = _step(t, self.changes)
        outside = pc.and_not(pc.invert(_has(allowed_bits, kind_bits)), marker)
        violation = pc.and_not(outside, pc.or_(withdrawn, redacted))
        drop = pc.or_(pc.or_(withdrawn, redacted), violation)
        keep = pc.invert(drop)

        title = events.column("title").combine_chunks()
        is_focus = pc.equal(kind, int(Kind.FOCUS))
        has_title = pc.and_(pc.and_(keep, pc.is_valid(title)), is_focus)
        title_withdrawn = pc.and_(
            has_title, pc.less_equal(t, pa.scalar(self.withdrawn.get(_TITLE_BIT, _MIN)))
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

    def _withdrawn_by_kind(self) -> pa.Array:
        """kind -> the time at or before which its events are withdrawn (minimum: never)."""
        return _kind_table(
            {k: self.withdrawn.get(_bit_of(k), _MIN) if _bit_of(k) else _MIN for k in Kind},
            _MIN,
        )


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
    content its own category does not cover, however it is consented. The
    integer fields a kind does not use must be 0, and a marker carries none."""
    other = pc.and_(keep, pc.invert(is_focus))
    app = pc.and_(other, pc.is_valid(events.column("app").combine_chunks()))
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


def _digest(changes: Sequence[tuple[int, int]], withdrawn: Mapping[int, int]) -> str:
    state = [list(changes), sorted(withdrawn.items())]
    return hashlib.sha256(json.dumps(state, separators=(",", ":")).encode()).hexdigest()


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


def _redaction_steps(redactions: Sequence[Redacted]) -> list[tuple[int, int]]:
    """The union of closed redaction intervals as a step function of category bits."""
    bounds = sorted({r.start_ns for r in redactions} | {r.end_ns + 1 for r in redactions})
    return [(b, _or(r.bits for r in redactions if r.start_ns <= b <= r.end_ns)) for b in bounds]


def _or(values: Iterable[int]) -> int:
    out = 0
    for v in values:
        out |= v
    return out


def coverage_of(records: Iterable[Mapping[str, Any]]) -> Coverage:
    """Fold a device's verified ledger records, oldest first, into a `Coverage`.

    Kinds other than consent, pause/resume, deletion and redaction (and
    categories this version does not know) change nothing.

    Raises:
        ValueError: a record time or interval is not a UTC time (the ledger
            verifier refuses such records first).
    """
    deleted: set[str] = set()
    held: dict[str, int] = {}
    withdrawn: dict[int, int] = {}
    redactions: list[Redacted] = []
    changes: list[tuple[int, int]] = []
    consented, paused, last = 0, False, _MIN
    for record in records:
        kind = record.get("kind")
        when = max(time_ns(str(record["time"])), last)
        last = when
        if kind == "consent.given":
            consented |= _bits(record["categories"])
        elif kind in ("consent.withdrawn", "consent.refused"):
            bits = _bits(record["categories"])
            consented &= ~bits
            if kind == "consent.withdrawn":
                for bit in _BIT.values():
                    if bits & bit:
                        withdrawn[bit] = when
        elif kind == "recording.paused":
            paused = True
        elif kind == "recording.resumed":
            paused = False
        elif kind == "session.deleted":
            deleted.add(str(record["session"]))
            continue
        elif kind == "session.held":
            held[str(record["session"])] = int(record["seq"])
            continue
        elif kind == "session.redacted":
            interval = record["interval"]
            redactions.append(
                Redacted(
                    seq=int(record["seq"]),
                    session=str(record["session"]),
                    bits=_bits(record["categories"]),
                    start_ns=time_ns(interval["start"]),
                    end_ns=time_ns(interval["end"]),
                )
            )
            continue
        else:
            continue
        allowed = 0 if paused else consented
        if changes and changes[-1][0] == when:
            changes[-1] = (when, allowed)
        elif not changes or changes[-1][1] != allowed:
            changes.append((when, allowed))
    return Coverage(
        deleted=frozenset(deleted),
        withdrawn=withdrawn,
        redactions=tuple(redactions),
        changes=tuple(changes),
        device_digest=_digest(changes, withdrawn),
        held=held,
        consented=consented,
    )
