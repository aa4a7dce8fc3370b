"""The dataset's rows as file bytes: JSON Lines and Parquet (docs/dataset.md),
and each table's column types as the `datasets` library's `Features`.

Both are built column-wise over the whole table, so a bundle of millions of
events is serialised without a Python object per row. Either table (events,
actions) is written from its own columns: times as RFC 3339 strings with
microseconds, numbers as numbers, strings escaped once per distinct value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cleartrace.org.rows import file_metadata

__all__ = ["TABLES", "features_json", "reader_schema", "to_jsonl", "to_parquet"]

#: The dataset's tables, each a directory of the dataset.
TABLES = ("events", "actions")


def _json_strings(values: pa.Array) -> pa.Array:
    """Each string as a JSON string literal (null as `null`), escaped once per distinct value."""
    if not isinstance(values, pa.DictionaryArray):
        values = pc.dictionary_encode(values)
    literals = [json.dumps(v, ensure_ascii=False) for v in values.dictionary.to_pylist()]
    return pc.fill_null(pc.take(pa.array(literals, pa.string()), values.indices), "null")


def _json_numbers(values: pa.Array) -> pa.Array:
    return pc.fill_null(pc.cast(values, pa.string()), "null")


def reader_schema(rows: pa.Table) -> pa.Schema:
    """The schema a reader sees: the in-memory dictionaries as their plain values."""
    return pa.schema(
        [
            f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f
            for f in rows.schema
        ]
    )


def _dtype(type_: pa.DataType) -> str:
    """The `datasets.Value` dtype of an Arrow type."""
    names = {pa.float64(): "float64", pa.float32(): "float32", pa.bool_(): "bool"}
    return names.get(type_, str(type_))


def features_json(schema: pa.Schema) -> bytes:
    """`schema` as `datasets.Features.to_dict()` writes it: what
    `Features.from_dict` reads back, so `load_dataset("json", ...)` types every
    column whatever file it reads first (it otherwise guesses from that file,
    and a column that is all null there becomes `null`)."""
    features = {f.name: {"dtype": _dtype(f.type), "_type": "Value"} for f in schema}
    return (json.dumps(features, indent=1) + "\n").encode()


def to_jsonl(rows: pa.Table) -> bytes:
    """The rows as JSON Lines: one object per row, keys in schema order, null as null.

    Built column-wise: strings are escaped once per distinct value with the
    standard library's JSON encoder and joined with pyarrow.compute, a slice
    of rows at a time (a string array holds at most 2 GiB).
    """
    step = 1 << 20
    return b"".join(_jsonl(rows.slice(i, step)) for i in range(0, rows.num_rows, step))


def _json_times(values: pa.Array) -> pa.Array:
    """RFC 3339 strings with microseconds, quoted (null as `null`)."""
    text = pc.binary_replace_slice(values.cast(pa.timestamp("us")).cast(pa.string()), 10, 11, "T")
    return pc.fill_null(pc.binary_join_element_wise('"', text, 'Z"', ""), "null")


def _jsonl(rows: pa.Table) -> bytes:
    pieces: list[pa.Array | str] = []
    for i, f in enumerate(reader_schema(rows)):
        column = rows.column(i).combine_chunks()
        pieces.append(("{" if i == 0 else ",") + f'"{f.name}":')
        if column.null_count == len(column):
            pieces.append("null")  # a literal, merged with its neighbours: no column work
        elif pa.types.is_timestamp(f.type):
            pieces.append(_json_times(column))
        elif pa.types.is_integer(f.type) or pa.types.is_floating(f.type):
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


def to_parquet(rows: pa.Table, table: str) -> bytes:
    """The rows of `table` as one Parquet file (zstd), the dataset version and
    the table's name in its metadata."""
    sink = pa.BufferOutputStream()
    # zstd: about a third smaller than snappy at the same writing speed here.
    # store_schema=False: readers get plain strings, not the in-memory dictionaries
    # (which also leaves out the schema's metadata: the version is added by hand).
    with pq.ParquetWriter(sink, rows.schema, compression="zstd", store_schema=False) as writer:
        writer.write_table(rows)
        writer.add_key_value_metadata(file_metadata(table))
    return bytes(sink.getvalue().to_pybytes())
