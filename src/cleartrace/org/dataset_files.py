"""The dataset's rows as file bytes: JSON Lines and Parquet (docs/dataset.md).

Both are built column-wise over the whole table, so a bundle of millions of
events is serialised without a Python object per row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cleartrace.org.rows import SCHEMA

__all__ = ["to_jsonl", "to_parquet"]


def _json_strings(values: pa.Array) -> pa.Array:
    """Each string as a JSON string literal (null as `null`), escaped once per distinct value."""
    if not isinstance(values, pa.DictionaryArray):
        values = pc.dictionary_encode(values)
    literals = [json.dumps(v, ensure_ascii=False) for v in values.dictionary.to_pylist()]
    return pc.fill_null(pc.take(pa.array(literals, pa.string()), values.indices), "null")


def _json_numbers(values: pa.Array) -> pa.Array:
    return pc.fill_null(pc.cast(values, pa.string()), "null")


def to_jsonl(rows: pa.Table) -> bytes:
    """The rows as JSON Lines: one object per row, keys in schema order, null as null.

    Built column-wise: strings are escaped once per distinct value with the
    standard library's JSON encoder and joined with pyarrow.compute, a slice
    of rows at a time (a string array holds at most 2 GiB).
    """
    step = 1 << 20
    return b"".join(_jsonl(rows.slice(i, step)) for i in range(0, rows.num_rows, step))


def _jsonl(rows: pa.Table) -> bytes:
    time = rows.column("time").combine_chunks().cast(pa.timestamp("us"))
    pieces: list[pa.Array | str] = [
        '{"time":"',
        pc.binary_replace_slice(time.cast(pa.string()), 10, 11, "T"),
        'Z"',
    ]
    for name in SCHEMA.names[1:]:
        column = rows.column(name).combine_chunks()
        pieces.append(f',"{name}":')
        if pa.types.is_integer(SCHEMA.field(name).type):
            pieces.append(_json_numbers(column))
        else:
            pieces.append(_json_strings(column))
    pieces.append("}\n")
    # Adjacent literals merge, so the join has fewer arguments.
    merged: list[pa.Array | str] = []
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        else:
            merged.append(piece)
    lines = pc.binary_join_element_wise(*merged, "")
    return b"".join(_string_data(chunk) for chunk in _chunks(lines))


def _chunks(values: pa.Array | pa.ChunkedArray) -> Iterable[pa.Array]:
    return values.chunks if isinstance(values, pa.ChunkedArray) else [values]


def _string_data(values: pa.Array) -> bytes:
    """The concatenated bytes of a string array without nulls (its data buffer, sliced)."""
    offsets = pa.Array.from_buffers(
        pa.int32(), len(values) + 1, [None, values.buffers()[1]], offset=values.offset
    )
    start, end = offsets[0].as_py(), offsets[len(values)].as_py()
    data = values.buffers()[2]
    return b"" if data is None else data.slice(start, end - start).to_pybytes()


def to_parquet(rows: pa.Table) -> bytes:
    """The rows as one Parquet file (zstd), the dataset version in its metadata."""
    sink = pa.BufferOutputStream()
    # zstd: about a third smaller than snappy at the same writing speed here.
    # store_schema=False: readers get plain strings, not the in-memory dictionaries
    # (which also leaves out the schema's metadata: the version is added by hand).
    with pq.ParquetWriter(sink, rows.schema, compression="zstd", store_schema=False) as writer:
        writer.write_table(rows)
        writer.add_key_value_metadata(
            {k.decode(): v.decode() for k, v in (SCHEMA.metadata or {}).items()}
        )
    return bytes(sink.getvalue().to_pybytes())
