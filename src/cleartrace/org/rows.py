"""The dataset's events rows: a bundle's kept events shaped into the reader's columns.

Columns are built with pyarrow.compute over the whole table. Constant
columns (device, subject, session, bundle) and the kind and category are
dictionary-encoded in memory, which Parquet stores as its own dictionary
pages; readers see plain strings (the Arrow schema is not stored in the
file, so pyarrow does not restore the in-memory dictionary type either).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cleartrace.events import CATEGORY_OF_KIND, Kind, char_of_keysym
from cleartrace.review.export import key_name

__all__ = [
    "DATASET_VERSION",
    "SCHEMA",
    "constant",
    "device_dir",
    "file_metadata",
    "key_apps",
    "rows_table",
]

#: The dataset format's version, in every Parquet file's metadata and the manifest.
#: 2: events/ and actions/ tables; key rows carry their app; the context kinds' columns.
DATASET_VERSION = 2


def file_metadata(table: str) -> dict[str, str]:
    """The key-value metadata of a Parquet file of `table` ("events" or "actions")."""
    return {"cleartrace.dataset.version": str(DATASET_VERSION), "cleartrace.dataset.table": table}


#: What a reader sees (docs/dataset.md). `time` is microseconds: Spark cannot
#: read Parquet TIMESTAMP(NANOS), and input events carry no finer meaning.
SCHEMA = pa.schema(
    [
        pa.field("time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("device", pa.string(), nullable=False),
        pa.field("subject", pa.string(), nullable=False),
        pa.field("session", pa.string(), nullable=False),
        pa.field("bundle", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("category", pa.string()),
        pa.field("keysym", pa.int32()),
        pa.field("char", pa.string()),
        pa.field("key", pa.string()),
        pa.field("x", pa.int32()),
        pa.field("y", pa.int32()),
        pa.field("button", pa.int32()),
        pa.field("dx", pa.int32()),
        pa.field("dy", pa.int32()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("monitors", pa.int32()),
        pa.field("scale", pa.int32()),
        pa.field("group", pa.int32()),
        pa.field("layout", pa.string()),
        pa.field("app", pa.string()),
        pa.field("title", pa.string()),
    ],
    metadata=file_metadata("events"),
)


def _by_kind(name_of: Callable[[Kind], str]) -> pa.Array:
    """A lookup indexed by the kind value; only known kinds reach the writer
    (coverage drops the others as violations)."""
    names = [""] * 256
    for kind in Kind:
        names[int(kind)] = name_of(kind)
    return pa.array(names, pa.string())


_KIND_NAMES = _by_kind(lambda kind: kind.name.lower())
# Markers have no category: their category index is null, so their entry is never read.
_CATEGORY_NAMES = _by_kind(lambda kind: getattr(CATEGORY_OF_KIND[kind], "value", ""))
_KEYS = (int(Kind.KEY_DOWN), int(Kind.KEY_UP))
_POINTER = (int(Kind.MOVE), int(Kind.BUTTON_DOWN), int(Kind.BUTTON_UP), int(Kind.SCROLL))
_BUTTONS = (int(Kind.BUTTON_DOWN), int(Kind.BUTTON_UP))
_MARKERS = (int(Kind.EXCLUDED_START), int(Kind.EXCLUDED_END))
#: Kinds whose a, b are a position (x, y) and c, d a size (width, height).
_PLACED = (int(Kind.FOCUS), int(Kind.MONITOR))
_SIZED = (int(Kind.FOCUS), int(Kind.MONITOR), int(Kind.SCREEN))
_NULL_INT = pa.scalar(None, pa.int32())
_NULL_STR = pa.scalar(None, pa.string())


def device_dir(device: str) -> str:
    """The partition value of a device: the first 16 hex digits of its fingerprint."""
    return device.removeprefix("sha256:")[:16]


def constant(value: str, n: int) -> pa.DictionaryArray:
    """A column of `n` times `value`, dictionary-encoded (one string in memory and on disk)."""
    return pa.DictionaryArray.from_arrays(
        pa.repeat(pa.scalar(0, pa.int8()), n), pa.array([value], pa.string())
    )


def _char(keysym: int) -> str | None:
    char = char_of_keysym(keysym)
    # A lone surrogate is no character anyone typed, and no valid UTF-8.
    return None if char is None or 0xD800 <= ord(char) <= 0xDFFF else char


def _key_columns(keysym: pa.Array) -> tuple[pa.Array, pa.Array]:
    """`char` and `key` for a keysym column: computed once per distinct keysym."""
    encoded = pc.dictionary_encode(keysym)
    distinct = encoded.dictionary.to_pylist()
    chars = [_char(k) for k in distinct]
    names = [None if c is not None else key_name(k) for k, c in zip(distinct, chars, strict=True)]
    indices = encoded.indices
    return (
        pc.take(pa.array(chars, pa.string()), indices),
        pc.take(pa.array(names, pa.string()), indices),
    )


def _where(mask: pa.Array, values: pa.Array) -> pa.Array:
    return pc.if_else(mask, values, _NULL_INT)


def key_apps(events: pa.Table, allowed: pa.Array) -> pa.Array:
    """For each row, the app of the latest focus row at or before it (null
    before the first), where `allowed` (app_focus may be kept at that row's
    time); only key rows read it. A cumulative maximum of focus positions: no
    per-event Python."""
    kind = events.column("kind").combine_chunks()
    n = len(kind)
    if n == 0:
        return pa.array([], pa.string())
    positions = pa.array(np.arange(n, dtype=np.int64))
    focus_at = pc.if_else(pc.equal(kind, int(Kind.FOCUS)), positions, -1)
    latest = pc.cumulative_max(focus_at)
    app = pc.take(events.column("app").combine_chunks(), pc.max_element_wise(latest, 0))
    return pc.if_else(pc.and_(allowed, pc.greater_equal(latest, 0)), app, _NULL_STR)


def rows_table(
    events: pa.Table,
    *,
    device: str,
    subject: str,
    session: str,
    bundle: str,
    app_allowed: pa.Array | None = None,
) -> pa.Table:
    """The dataset rows of kept events (`EVENT_SCHEMA`, only known kinds, in time order).

    Key rows get the app of the latest focus row before them, where
    `app_allowed` (app_focus consented, not withdrawn or redacted at the
    key's time; none when not given). The result has SCHEMA's names and
    order; the string columns that repeat are dictionary-encoded (`SCHEMA`
    is what a reader sees).
    """
    n = events.num_rows
    t = events.column("t_ns").combine_chunks()
    kind = events.column("kind").combine_chunks()
    a, b, c, d = (events.column(x).combine_chunks() for x in "abcd")
    is_key = pc.is_in(kind, pa.array(_KEYS, pa.uint8()))
    is_pointer = pc.is_in(kind, pa.array(_POINTER, pa.uint8()))
    is_placed = pc.or_(is_pointer, pc.is_in(kind, pa.array(_PLACED, pa.uint8())))
    is_sized = pc.is_in(kind, pa.array(_SIZED, pa.uint8()))
    is_button = pc.is_in(kind, pa.array(_BUTTONS, pa.uint8()))
    is_scroll = pc.equal(kind, int(Kind.SCROLL))
    is_screen = pc.equal(kind, int(Kind.SCREEN))
    is_layout = pc.equal(kind, int(Kind.LAYOUT))
    is_marker = pc.is_in(kind, pa.array(_MARKERS, pa.uint8()))
    is_focus = pc.equal(kind, int(Kind.FOCUS))
    keysym = _where(is_key, a)
    char, key = _key_columns(keysym)
    kind_index = kind.cast(pa.int16())
    category_index = pc.if_else(is_marker, pa.scalar(None, pa.int16()), kind_index)
    app = events.column("app").combine_chunks()
    allowed = pa.repeat(pa.scalar(False), n) if app_allowed is None else app_allowed
    columns = [
        pc.divide(t, 1000).cast(pa.timestamp("us", tz="UTC")),
        constant(device_dir(device), n),
        constant(subject, n),
        constant(session, n),
        constant(bundle, n),
        pa.DictionaryArray.from_arrays(kind_index, _KIND_NAMES),
        pa.DictionaryArray.from_arrays(category_index, _CATEGORY_NAMES),
        keysym,
        char,
        key,
        _where(is_placed, a),
        _where(is_placed, b),
        _where(is_button, c),
        _where(is_scroll, c),
        _where(is_scroll, d),
        # A screen's a is its monitor count and b, c the root size; a focus or
        # monitor's c, d are its size.
        pc.if_else(is_screen, b, _where(is_sized, c)),
        pc.if_else(is_screen, c, _where(is_sized, d)),
        _where(is_screen, a),
        _where(is_screen, d),
        _where(is_layout, a),
        # A layout event's text is its layout's name, not an application.
        pc.if_else(is_layout, app, _NULL_STR),
        # A focus row names its application; a key row the one it was typed
        # into (coverage reports any other row carrying one and clears it).
        pc.if_else(is_focus, app, pc.if_else(is_key, key_apps(events, allowed), _NULL_STR)),
        pc.if_else(is_focus, events.column("title").combine_chunks(), _NULL_STR),
    ]
    return pa.Table.from_arrays(columns, names=SCHEMA.names)
