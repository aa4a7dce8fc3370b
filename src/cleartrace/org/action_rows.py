"""The dataset's actions rows: the actions derived from a bundle's kept events
(org/actions.py), with who and where they came from.

`derive_actions` gives each action's span, episode, step, fields, code, the
positions of its first and last event in the bundle and the consent category
it is made of. This adds the columns constant over a bundle (device, subject,
session, bundle, as in the events table) and `consent_seq`: the ledger
sequence number of the `consent.given` record that consented the action's
category in force at its start (`consent_seq`, over `Coverage.given`). With `bundle`,
`first_event` and `last_event` it is the action's lineage: which events of
which upload, captured under which consent. `category` stays: it is what
`consent_seq` refers to, and what the audit holds the row to.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cleartrace.categories import Category
from cleartrace.consent.coverage import Coverage
from cleartrace.consent.coverage_arrow import BIT
from cleartrace.org.actions import ACTION_SCHEMA, derive_actions
from cleartrace.org.rows import constant, device_dir, file_metadata

__all__ = ["ACTIONS_SCHEMA", "actions_table", "consent_seq", "lineage_digest"]

_CONSTANT = ("device", "subject", "session", "bundle")
#: The columns of an action that are app_focus data (its episode's focus event's).
_APP_FOCUS_DATA = ("app", "window_x", "window_y", "window_width", "window_height")

#: What a reader of the actions table sees (docs/dataset.md): the span, the
#: bundle's constant columns, the derived columns, then the consent lineage.
ACTIONS_SCHEMA = pa.schema(
    [
        *(ACTION_SCHEMA.field(c) for c in ("time", "end")),
        *(pa.field(c, pa.string(), nullable=False) for c in _CONSTANT),
        *(f for f in ACTION_SCHEMA if f.name not in ("time", "end")),
        pa.field("consent_seq", pa.int64()),
    ],
    metadata=file_metadata("actions"),
)


def actions_table(
    kept: pa.Table,
    coverage: Coverage,
    *,
    device: str,
    subject: str,
    session: str,
    bundle: str,
    head_seq: int,
) -> pa.Table:
    """The actions rows of a bundle's kept events (coverage's output with the
    `index` column ingest adds), in ACTIONS_SCHEMA's order.

    An action's application and window (app_focus data) and title
    (window_titles data) are those of its episode's focus event, kept at the
    focus's time; they stay on the action only where their categories may be
    kept at its start and its end too (`Coverage.allows`), as the audit holds
    them (org/proof_rules.py)."""
    derived = derive_actions(kept)
    n = derived.num_rows
    start_ns = _ns(derived.column("time"))
    end_ns = _ns(derived.column("end"))
    seq = consent_seq(coverage, start_ns, derived.column("category").combine_chunks())
    app_ok, title_ok = (
        coverage.allows(start_ns, category, session=session, head_seq=head_seq, end=end_ns)
        for category in (Category.APP_FOCUS, Category.WINDOW_TITLES)
    )
    title_ok = pc.and_(app_ok, title_ok)
    for name in _APP_FOCUS_DATA:
        derived = _keep_where(derived, name, app_ok)
    derived = _keep_where(derived, "title", title_ok)
    values = {
        "device": constant(device_dir(device), n),
        "subject": constant(subject, n),
        "session": constant(session, n),
        "bundle": constant(bundle, n),
        "consent_seq": seq,
    }
    columns = [
        values[name] if name in values else derived.column(name) for name in ACTIONS_SCHEMA.names
    ]
    return pa.Table.from_arrays(columns, names=ACTIONS_SCHEMA.names)


def consent_seq(coverage: Coverage, t: pa.Array, category: pa.Array) -> pa.Array:
    """Per row, the seq of the latest `consent.given` naming its category (a
    name of `category`) at or before its time `t` (ns), null when none: the
    consent a kept row was captured under (it was consented then). A binary
    search per row over each category's records (`Coverage.given`)."""
    times = t.to_numpy(zero_copy_only=False)
    names = category.to_numpy(zero_copy_only=False)
    out = np.full(len(times), -1, dtype=np.int64)
    for name, bit in ((c.value, b) for c, b in BIT.items()):
        points = coverage.given.get(bit, ())
        mine = names == name
        if not points or not mine.any():
            continue
        when = np.array([p[0] for p in points], dtype=np.int64)
        seqs = np.array([p[1] for p in points], dtype=np.int64)
        at = np.searchsorted(when, times[mine], side="right") - 1
        out[mine] = np.where(at >= 0, seqs[np.maximum(at, 0)], -1)
    return pa.array(out, pa.int64(), mask=out < 0)


def _ns(times: pa.ChunkedArray) -> pa.Array:
    return pc.multiply(times.combine_chunks().cast(pa.int64()), 1000)


def _keep_where(table: pa.Table, name: str, mask: pa.Array) -> pa.Table:
    """`table` with column `name` null where `mask` is false."""
    index = table.schema.get_field_index(name)
    column = table.column(index).combine_chunks()
    empty = pa.scalar(None, column.type)
    return table.set_column(index, table.field(index), pc.if_else(mask, column, empty))


def lineage_digest(actions: pa.Table) -> str:
    """A digest of the actions' consent lineage: a re-run that would name
    another consent rewrites the files even when the same events are kept."""
    seq = pc.fill_null(actions.column("consent_seq").combine_chunks(), -1)
    values = pa.concat_arrays([seq]) if seq.offset else seq
    data = values.buffers()[1]
    raw = b"" if data is None else data.to_pybytes()[: 8 * len(values)]
    return hashlib.sha256(raw).hexdigest()
