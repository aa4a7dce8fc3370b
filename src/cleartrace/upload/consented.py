"""What of a session may leave under the consent in force when it is bundled, field by field.

Consent is per category, and a category is not always a kind of event: a
window title (`window_titles`) rides on a focus event (`app_focus`). So the
filter works on fields, each owned by one category:

=============  ==================  =====================================
kind           category            fields it may carry
=============  ==================  =====================================
KEY_DOWN/UP    keys                a (keysym)
MOVE           mouse_move          a, b (position)
BUTTON_*       clicks              a, b, c (position, button)
SCROLL         scroll              a, b, c, d (position, steps)
FOCUS          app_focus           a, b, c, d (window), app; title
                                   (owned by window_titles)
EXCLUDED_*     none                nothing at all
SCREEN         clicks              a, b, c, d (monitors, size, scale)
MONITOR        clicks              a, b, c, d (position, size)
LAYOUT         keys                a (XKB group), app (layout name)
=============  ==================  =====================================

An event leaves only if its category is consented now and it was captured
after that category's latest withdrawal (the rule ingest applies,
docs/dataset.md rule 4, so nothing leaves that the organisation would have
to drop). The ledger is folded by ingest's own `coverage_of`, so both read
the same times: a record whose clock went backwards takes effect at the
previous record's time, and a withdrawal so corrected stops the events up
to that corrected time here too. A field another category owns leaves only under that category's
consent; a field its kind does not carry never leaves. The recorder never
writes such fields; this is the last check before anything is sealed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cleartrace.categories import Category
from cleartrace.consent.coverage import Coverage, coverage_of
from cleartrace.events import CATEGORY_OF_KIND, NUMBERS_OF_KIND, Kind

__all__ = ["UploadConsent", "categories_of_counts"]

_MIN = -(2**63)
_MAX = 2**63 - 1
#: Category names this version knows (a newer device's are skipped).
_CATEGORY_NAMES = frozenset(c.value for c in Category)


def _by_kind(value_of: Mapping[Kind, int], other: int) -> pa.Array:
    """A 256-entry lookup indexed by the uint8 `kind` column."""
    values = [other] * 256
    for kind, value in value_of.items():
        values[int(kind)] = value
    return pa.array(values, pa.int64())


_USED = _by_kind(NUMBERS_OF_KIND, 0)


def categories_of_counts(counts: Mapping[str, int]) -> frozenset[Category]:
    """The categories a bundle whose header has `counts` may hold.

    Titles are not counted apart: a bundle with focus events may hold titles.
    """
    held = {Category(name) for name, n in counts.items() if n and name in _CATEGORY_NAMES}
    if Category.APP_FOCUS in held:
        held.add(Category.WINDOW_TITLES)
    return frozenset(held)


@dataclass(frozen=True, slots=True)
class UploadConsent:
    """The categories consented now and when each was last withdrawn (wall-clock ns)."""

    allowed: frozenset[Category]
    withdrawn_at: Mapping[Category, int]

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> UploadConsent:
        """Fold the device's ledger, oldest first, as ingest does (`coverage_of`).

        Whatever policy a "yes" was given to counts (the session was recorded
        under it); a refusal or a withdrawal under any policy takes the
        category back, and a withdrawal stops what came before it.

        Raises:
            ValueError: a record time is not a UTC time (the ledger refuses
                such records when they are written).
        """
        return cls.from_coverage(coverage_of(records))

    @classmethod
    def from_coverage(cls, coverage: Coverage) -> UploadConsent:
        """The consent of a ledger already folded (`coverage_of`)."""
        return cls(coverage.consented_now(), coverage.withdrawn_at())

    def taken_back_since(self, before: UploadConsent) -> frozenset[Category]:
        """The categories `before` let leave that this later consent no longer
        lets leave as they did: refused or withdrawn since, not given again, or
        withdrawn since (what came before that withdrawal stays)."""
        return frozenset(
            c
            for c in before.allowed
            if c not in self.allowed or self.withdrawn_at.get(c) != before.withdrawn_at.get(c)
        )

    def _since(self, category: Category | None) -> int:
        """Events of `category` captured after this time may leave (_MAX: none may)."""
        if category is None:
            return _MIN
        if category not in self.allowed:
            return _MAX
        return self.withdrawn_at.get(category, _MIN)

    def filter(self, events: pa.Table) -> pa.Table:
        """The rows of an `EVENT_SCHEMA` table (wall-clock times) that may leave,
        each with only the fields that may leave."""
        if events.num_rows == 0:
            return events
        t = events.column("t_ns").combine_chunks()
        kind = events.column("kind").combine_chunks()
        since = _by_kind({k: self._since(CATEGORY_OF_KIND[k]) for k in Kind}, _MAX)
        keep = pc.greater(t, pc.take(since, kind))
        focus = pc.equal(kind, int(Kind.FOCUS))
        titled = pc.and_(focus, pc.greater(t, self._since(Category.WINDOW_TITLES)))
        used = pc.take(_USED, kind)
        columns = [t, kind]
        for i, name in enumerate("abcd"):
            values = events.column(name).combine_chunks()
            columns.append(pc.if_else(pc.greater(used, i), values, pa.scalar(0, pa.int32())))
        nothing = pa.scalar(None, pa.string())
        # `app` is a focus event's application, or a layout event's layout name.
        named = pc.or_(focus, pc.equal(kind, int(Kind.LAYOUT)))
        columns.append(pc.if_else(named, events.column("app").combine_chunks(), nothing))
        columns.append(pc.if_else(titled, events.column("title").combine_chunks(), nothing))
        return pa.Table.from_arrays(columns, schema=events.schema).filter(keep)
