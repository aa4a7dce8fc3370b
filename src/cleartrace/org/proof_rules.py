"""One device's verified ledger as the audit's coverage proof uses it: which rows of
the dataset contradict it, and which ledger record each one contradicts.

The verdict is consent's own fold (`consent.coverage.coverage_of`): the step
function of consented, unpaused categories, the latest withdrawal per
category, the deleted sessions and the redactions. This module evaluates that
fold on the dataset's columns (Arrow masks, no per-row Python) and, only for
rows found in violation, looks up the record to name: the deletion, the
withdrawal that covers the row, the redaction, or the pause or withdrawal in
force when the row was captured (none when the category was never consented).

A redaction covers the rows of bundles built before it (docs/dataset.md rule
5). The dataset does not say when a bundle was built; the ledger does, in the
`bundle.uploaded` record the device writes when the collector acknowledges a
bundle (`witnessed.seq` is the bundle's ledger head). A bundle without one
(the latest upload, or an acknowledgement lost) is taken as built after every
redaction the ledger holds: rows a later redaction removed are then not
looked for in it. Records are applied at the times the fold applies them (a
record whose clock went backwards at the time of the record before it).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cleartrace.categories import Category
from cleartrace.consent.coverage import Coverage, coverage_of, time_ns
from cleartrace.consent.coverage_arrow import BIT, bits_of, step
from cleartrace.events import CATEGORY_OF_KIND, Kind

__all__ = ["CODES", "DeviceLedger", "Rows", "category_of"]

_MIN = -(2**63)
_TITLE = BIT[Category.WINDOW_TITLES]
#: Dataset `kind` names in Kind order, and each one's category bit (0 for markers).
_KINDS = list(Kind)
_KIND_NAMES = pa.array([k.name.lower() for k in _KINDS], pa.string())
_KIND_BITS = pa.array(
    [0 if CATEGORY_OF_KIND[k] is None else BIT[CATEGORY_OF_KIND[k]] for k in _KINDS],  # type: ignore[index]
    pa.int64(),
)
_CATEGORY_OF_BIT = {bit: c.value for c, bit in BIT.items()}

#: Row verdict codes, 0 for a row the ledger allows; the rule names violations carry.
CODES = {
    1: "deleted",
    2: "unknown-kind",
    3: "withdrawn",
    4: "redacted",
    5: "outside-consent",
    6: "withdrawn",  # its window title
    7: "redacted",  # its window title
    8: "outside-consent",  # its window title
    9: "field-outside-kind",
    10: "withdrawn",  # the application a key row (or an action) names
    11: "redacted",  # the application a key row (or an action) names
    12: "outside-consent",  # the application a key row (or an action) names
}
_TITLE_CODES = (6, 7, 8)
_APP_CODES = (10, 11, 12)
_APP = BIT[Category.APP_FOCUS]
_KEY_KINDS = pa.array(["key_down", "key_up"], pa.string())


@dataclass(frozen=True, slots=True)
class Rows:
    """The columns of a slice of dataset rows the proof reads (one device's).

    Events rows by default: a focus row's app is its own (app_focus) data, a
    key row's app is app_focus data held to app_focus's rules at the key's
    time, and only a focus row may carry a title. Actions rows say otherwise
    (`app_data`, `title_data`: where the app / title is data held to its
    category's rules) and span [t_ns, t_end]; an action's app stands for all
    its app_focus data (app, window, title: org/audit_proof.py `_rows`).
    """

    t_ns: pa.Array
    kind: pa.Array
    session: pa.Array
    bundle: pa.Array
    app: pa.Array
    title: pa.Array
    app_data: pa.Array | None = None
    title_data: pa.Array | None = None
    t_end: pa.Array | None = None


@dataclass
class DeviceLedger:
    """A device's verified records folded for the proof."""

    fingerprint: str
    coverage: Coverage
    #: session -> seq of its `session.deleted` record.
    deleted: dict[str, int] = field(default_factory=dict)
    #: category bit -> [(time_ns, seq)] of its `consent.withdrawn` records, in order.
    withdrawals: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    #: category bit -> [(time_ns, seq)] of the records that ended its consent.
    endings: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    #: [(time_ns, seq, paused)] of `recording.paused` / `recording.resumed`.
    pauses: list[tuple[int, int, bool]] = field(default_factory=list)
    #: bundle name -> its ledger head seq, from `bundle.uploaded`.
    heads: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, fingerprint: str, records: Sequence[Mapping[str, Any]]) -> DeviceLedger:
        """Fold `records` (verified, oldest first).

        Raises:
            ValueError: a record time is not a UTC time (verified ledgers have none).
        """
        out = cls(fingerprint, coverage_of(records))
        last = _MIN
        for record in records:
            when = last = max(time_ns(str(record["time"])), last)
            kind, seq = record.get("kind"), int(record["seq"])
            if kind == "session.deleted":
                out.deleted.setdefault(str(record["session"]), seq)
            elif kind in ("consent.withdrawn", "consent.refused"):
                for bit in _bits(record["categories"]):
                    out.endings.setdefault(bit, []).append((when, seq))
                    if kind == "consent.withdrawn":
                        out.withdrawals.setdefault(bit, []).append((when, seq))
            elif kind in ("recording.paused", "recording.resumed"):
                out.pauses.append((when, seq, kind == "recording.paused"))
            elif kind == "bundle.uploaded":
                out.heads[str(record["bundle"])] = int(record["witnessed"]["seq"])
        return out

    # -- the verdict, vectorised --------------------------------------------------------

    def verdict(self, rows: Rows) -> pa.Array:
        """Per row, the code (CODES) of the first rule it breaks, 0 when none."""
        n = len(rows.t_ns)
        none = pa.repeat(pa.scalar(False), n)
        t = pc.fill_null(rows.t_ns, _MIN)
        end = t if rows.t_end is None else pc.fill_null(rows.t_end, t)
        index = pc.index_in(rows.kind, value_set=_KIND_NAMES)
        unknown = pc.is_null(index)
        bits = pc.fill_null(pc.take(_KIND_BITS, index), 0)
        marker = pc.and_not(pc.equal(bits, 0), unknown)
        event = pc.invert(pc.or_(marker, unknown))
        cov = self.coverage
        deleted = (
            pc.fill_null(pc.is_in(rows.session, value_set=pa.array(sorted(self.deleted))), False)
            if self.deleted
            else none
        )
        thresholds = pc.fill_null(
            pc.take(pa.array([cov.withdrawn.get(b, _MIN) for b in _KIND_BITS.to_pylist()]), index),
            _MIN,
        )
        withdrawn = pc.and_(event, pc.less_equal(t, thresholds))
        cut = self._redacted_bits(rows, t, end, n)
        redacted = pc.and_(event, _has(cut, bits))
        allowed = step(t, cov.changes).cast(pa.int64())
        if rows.t_end is not None:  # consented over the whole span: at both ends
            allowed = pc.bit_wise_and(allowed, step(end, cov.changes).cast(pa.int64()))
        outside = pc.and_(event, pc.invert(_has(allowed, bits)))
        is_focus = pc.fill_null(pc.equal(rows.kind, "focus"), False)
        is_key = pc.fill_null(pc.is_in(rows.kind, value_set=_KEY_KINDS), False)
        title_data = is_focus if rows.title_data is None else rows.title_data
        app_data = is_key if rows.app_data is None else rows.app_data
        titled = pc.and_(title_data, pc.is_valid(rows.title))
        title_withdrawn = pc.and_(titled, pc.less_equal(t, cov.withdrawn.get(_TITLE, _MIN)))
        title_redacted = pc.and_(titled, _has(cut, _TITLE))
        title_outside = pc.and_(titled, pc.invert(_has(allowed, _TITLE)))
        named = pc.and_(app_data, pc.is_valid(rows.app))
        app_withdrawn = pc.and_(named, pc.less_equal(t, cov.withdrawn.get(_APP, _MIN)))
        app_redacted = pc.and_(named, _has(cut, _APP))
        app_outside = pc.and_(named, pc.invert(_has(allowed, _APP)))
        stray = pc.or_(
            pc.and_not(pc.is_valid(rows.app), pc.or_(is_focus, app_data)),
            pc.and_not(pc.is_valid(rows.title), title_data),
        )
        code = pa.repeat(pa.scalar(0, pa.int8()), n)
        # Lowest precedence first: each later rule overrides.
        for number, mask in (
            (9, stray),
            (12, app_outside),
            (11, app_redacted),
            (10, app_withdrawn),
            (8, title_outside),
            (7, title_redacted),
            (6, title_withdrawn),
            (5, outside),
            (4, redacted),
            (3, withdrawn),
            (2, unknown),
            (1, deleted),
        ):
            code = pc.if_else(mask, pa.scalar(number, pa.int8()), code)
        return code

    def _redacted_bits(self, rows: Rows, t: pa.Array, end: pa.Array, n: int) -> pa.Array:
        """Per row, the category bits a redaction made after its bundle removed
        at the row's time, or (an action) at its start or its end: an action's
        events between them are not in the row, and may lie around a redacted
        interval that took the events inside it."""
        cut = pa.repeat(pa.scalar(0, pa.int64()), n)
        if not self.coverage.redactions:
            return cut
        sessions = set(pc.unique(rows.session).to_pylist())
        bundles = [b for b in pc.unique(rows.bundle).to_pylist() if b in self.heads]
        for r in self.coverage.redactions:
            if r.session not in sessions:
                continue
            before = [b for b in bundles if self.heads[b] < r.seq]
            if not before:
                continue
            mask = pc.and_(
                pc.and_(pc.equal(rows.session, r.session), pc.is_in(rows.bundle, pa.array(before))),
                pc.or_(
                    pc.and_(pc.greater_equal(t, r.start_ns), pc.less_equal(t, r.end_ns)),
                    pc.and_(pc.greater_equal(end, r.start_ns), pc.less_equal(end, r.end_ns)),
                ),
            )
            cut = pc.if_else(pc.fill_null(mask, False), pc.bit_wise_or(cut, r.bits), cut)
        return cut

    # -- naming the record, row by row (violations only) ---------------------------------

    def record_of(self, code: int, row: Mapping[str, Any]) -> tuple[str | None, int | None]:
        """(category, seq of the record contradicted) for a row in violation `code`;
        `row` has t_ns, kind, session, bundle and app."""
        t = _MIN if row["t_ns"] is None else int(row["t_ns"])
        category = category_of(row["kind"])
        if code in _TITLE_CODES:
            category = Category.WINDOW_TITLES.value
        elif code in _APP_CODES:
            category = Category.APP_FOCUS.value
        elif code == 9:
            category = (
                Category.APP_FOCUS.value if row["app"] is not None else Category.WINDOW_TITLES.value
            )
        bit = BIT.get(Category(category)) if category is not None else None
        if code == 1:
            return category, self.deleted.get(str(row["session"]))
        if code in (3, 6, 10) and bit is not None:
            times = self.withdrawals.get(bit, [])
            at = bisect.bisect_left(times, (t, -1))
            return category, times[at][1] if at < len(times) else None
        if code in (4, 7, 11) and bit is not None:
            return category, self._redaction_seq(row, t, bit)
        if code in (5, 8, 12) and bit is not None:
            return category, self._ending_seq(t, bit)
        return category, None

    def _redaction_seq(self, row: Mapping[str, Any], t: int, bit: int) -> int | None:
        head = self.heads.get(str(row["bundle"]))
        for r in self.coverage.redactions:
            if (
                r.session == row["session"]
                and head is not None
                and r.seq > head
                and r.bits & bit
                and any(r.start_ns <= when <= r.end_ns for when in (t, int(row.get("t_end") or t)))
            ):
                return r.seq
        return None

    def _ending_seq(self, t: int, bit: int) -> int | None:
        """The pause in force at `t`, else the withdrawal or refusal that ended the
        category's consent before it; None when it was never consented."""
        at = bisect.bisect_right(self.pauses, (t, 2**63, True)) - 1
        if at >= 0 and self.pauses[at][2]:
            return self.pauses[at][1]
        endings = self.endings.get(bit, [])
        at = bisect.bisect_right(endings, (t, 2**63)) - 1
        return endings[at][1] if at >= 0 else None


def _bits(names: Any) -> list[int]:
    value = bits_of(names)
    return [bit for bit in BIT.values() if value & bit]


def _has(bits: pa.Array, wanted: pa.Array | int) -> pa.Array:
    return pc.not_equal(pc.bit_wise_and(bits, wanted), 0)


def category_of(kind: Any) -> str | None:
    """The category name of a dataset `kind` (None for markers and unknown kinds)."""
    try:
        category = CATEGORY_OF_KIND[Kind[str(kind).upper()]]
    except KeyError:
        return None
    return None if category is None else category.value
