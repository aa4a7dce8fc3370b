"""One bundle's rows in both tables of the dataset: its kept events shaped into
events rows (org/rows.py) and the actions derived from them (org/action_rows.py).

Ingest numbers a bundle's events (`with_index`) before coverage selects them,
so that each action can name the first and last event it came from by their
position in the bundle, whatever coverage dropped or reordered. Both tables
come from the same kept events, so a withdrawal, deletion or redaction that
drops an event drops the actions made of it too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cleartrace.categories import Category
from cleartrace.consent.coverage import Coverage
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
) -> BundleRows:
    """Both tables' rows of a bundle's `kept` events (coverage's output, in time
    order, with INDEX). Key rows name their application only where app_focus
    may be kept at their time (`Coverage.allows`)."""
    t = kept.column("t_ns").combine_chunks()
    app_allowed = coverage.allows(t, Category.APP_FOCUS, session=session, head_seq=head_seq)
    events = rows_table(
        kept,
        device=device,
        subject=subject,
        session=session or "",
        bundle=bundle,
        app_allowed=app_allowed,
    )
    actions = actions_table(
        kept,
        coverage,
        device=device,
        subject=subject,
        session=session or "",
        bundle=bundle,
        head_seq=head_seq,
    )
    return BundleRows({"events": events, "actions": actions}, lineage=lineage_digest(actions))
