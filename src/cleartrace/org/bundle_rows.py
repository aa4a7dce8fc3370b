"""One bundle's rows in both tables of the dataset: its kept events shaped into
events rows (org/rows.py) and the actions derived from them (org/action_rows.py).

Ingest numbers a bundle's events (`with_index`) before coverage selects them,
so that each action can name the first and last event it came from by their
position in the bundle, whatever coverage dropped or reordered. Both tables
come from the same kept events, so a withdrawal, deletion or redaction that
drops an event drops the actions made of it too.

A FOCUS event coverage dropped still ends the window before it: where the
latest focus before it was kept, a blank focus row (no app, no title, a
geometry of zeros: an unknown window) takes its place while key rows look up
their app and actions their episode, so what was typed after it is never
credited to the previous window. The blank rows are not written: the events
table holds only kept events. A dropped focus after another dropped one
adds nothing: the window is unknown already, and a new episode there would
tell when windows changed where app_focus may not be kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cleartrace.categories import Category
from cleartrace.consent.coverage import Coverage
from cleartrace.events import Kind
from cleartrace.org.action_rows import actions_table, lineage_digest
from cleartrace.org.rows import rows_table

__all__ = ["INDEX", "BundleRows", "bundle_rows", "with_index"]

#: The column ingest adds to a bundle's events: each one's position in the bundle.
INDEX = "index"


def with_index(events: pa.Table) -> pa.Table:
    """`events` with INDEX, 0 .. n-1: what coverage keeps carries it along."""
    return events.append_column(INDEX, pa.array(np.arange(events.num_rows, dtype=np.int64)))


@dataclass(frozen=True, slots=True)
class BundleRows:
    """A bundle's rows per table ("events", "actions"), as readers see them."""

    tables: dict[str, pa.Table]
    #: Identifies the rows beyond coverage's selection (the actions' consent lineage).
    lineage: str

    def digest(self, selection: str) -> str:
        """The digest the manifest keeps: coverage's `selection` and the lineage."""
        return hashlib.sha256(f"{selection}:{self.lineage}".encode()).hexdigest()

    @property
    def actions(self) -> int:
        return int(self.tables["actions"].num_rows) if "actions" in self.tables else 0


def bundle_rows(
    kept: pa.Table,
    coverage: Coverage,
    *,
    device: str,
    subject: str,
    session: str | None,
    bundle: str,
    head_seq: int,
    held: pa.Table | None = None,
) -> BundleRows:
    """Both tables' rows of a bundle's `kept` events (coverage's output, in time
    order, with INDEX). Key rows name their application only where app_focus
    may be kept at their time (`Coverage.allows`). `held` is what coverage was
    given (with INDEX): the FOCUS events it dropped end their window's rows."""
    context, blank = _with_dropped_focus(kept, held)
    t = context.column("t_ns").combine_chunks()
    app_allowed = coverage.allows(t, Category.APP_FOCUS, session=session, head_seq=head_seq)
    events = rows_table(
        context,
        device=device,
        subject=subject,
        session=session or "",
        bundle=bundle,
        app_allowed=app_allowed,
    )
    if blank is not None:
        events = events.filter(pc.invert(blank))
    actions = actions_table(
        context,
        coverage,
        device=device,
        subject=subject,
        session=session or "",
        bundle=bundle,
        head_seq=head_seq,
    )
    return BundleRows({"events": events, "actions": actions}, lineage=lineage_digest(actions))


def _with_dropped_focus(kept: pa.Table, held: pa.Table | None) -> tuple[pa.Table, pa.Array | None]:
    """`kept` with a blank FOCUS row for each focus of `held` coverage dropped
    right after a kept one, each placed by its time before the kept rows of the
    same time; and which rows are blank (None when there are none)."""
    if held is None:
        return kept, None
    focus = held.filter(pc.equal(held.column("kind"), int(Kind.FOCUS)))
    t = focus.column("t_ns").to_numpy()
    index = focus.column(INDEX).to_numpy()
    order = np.lexsort((index, t))
    t, index = t[order], index[order]
    was_kept = np.isin(index, kept.column(INDEX).to_numpy())
    after_kept = np.concatenate(([False], was_kept[:-1]))
    ends = ~was_kept & after_kept
    n = int(ends.sum())
    if n == 0:
        return kept, None
    values = {
        "t_ns": pa.array(t[ends], pa.int64()),
        "kind": pa.repeat(pa.scalar(int(Kind.FOCUS), pa.uint8()), n),
        INDEX: pa.array(index[ends], pa.int64()),
        **{x: pa.repeat(pa.scalar(0, pa.int32()), n) for x in "abcd"},
    }
    blanks = pa.Table.from_arrays(
        [
            values[f.name].cast(f.type) if f.name in values else pa.nulls(n, f.type)
            for f in kept.schema
        ],
        schema=kept.schema,
    )
    kept_n = kept.num_rows
    at = np.searchsorted(kept.column("t_ns").to_numpy(), t[ends], "left")
    rows = np.insert(np.arange(kept_n), at, kept_n + np.arange(n))
    context = pa.concat_tables([kept, blanks]).take(rows)
    return context, pa.array(rows >= kept_n)
