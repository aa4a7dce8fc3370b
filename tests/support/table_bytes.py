"""Where a canary string is in an Iceberg dataset's directory, in any file, decoded.

Parquet pages and Avro manifest blocks are compressed, so a byte search of
the files alone could miss a value that is there: every file is searched as
it is, every Parquet file also as its decoded values and column statistics,
and every Avro file also as its decompressed blocks (which hold the column
bounds, lower and upper, of every data file a manifest lists).
"""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow.parquet as pq
from pyiceberg.avro.codecs import KNOWN_CODECS


def _long(stream: io.BytesIO) -> int:
    """An Avro long: zig-zag, variable length."""
    shift = result = 0
    while True:
        byte = stream.read(1)
        if not byte:
            raise EOFError
        result |= (byte[0] & 0x7F) << shift
        shift += 7
        if not byte[0] & 0x80:
            return (result >> 1) ^ -(result & 1)


def avro_blocks(data: bytes) -> list[bytes]:
    """The decompressed data blocks of an Avro object container file."""
    stream = io.BytesIO(data)
    assert stream.read(4) == b"Obj\x01", "an Avro container"
    meta: dict[str, bytes] = {}
    while (count := _long(stream)) != 0:
        if count < 0:
            _long(stream)
            count = -count
        for _ in range(count):
            key = stream.read(_long(stream)).decode()
            meta[key] = stream.read(_long(stream))
    stream.read(16)  # the sync marker
    codec = KNOWN_CODECS[meta.get("avro.codec", b"null").decode()]  # type: ignore[index]
    blocks = []
    while True:
        try:
            _long(stream)
        except EOFError:
            return blocks
        raw = stream.read(_long(stream))
        blocks.append(raw if codec is None else codec.decompress(raw))
        stream.read(16)


def _parquet_text(path: Path) -> str:
    """Every value and every column statistic of a Parquet file, as text."""
    values = repr(pq.read_table(path, partitioning=None).to_pylist())
    meta = pq.ParquetFile(path).metadata
    stats = [
        repr((c.statistics.min, c.statistics.max))
        for g in range(meta.num_row_groups)
        for c in (meta.row_group(g).column(i) for i in range(meta.num_columns))
        if c.statistics is not None and c.statistics.has_min_max
    ]
    return values + "".join(stats)


def canary_places(root: Path, canary: str) -> list[str]:
    """Every file under `root` holding `canary`, with how it was found."""
    needle = canary.encode()
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        data = path.read_bytes()
        if needle in data:
            found.append(f"{rel} (bytes)")
        if path.suffix == ".parquet" and canary in _parquet_text(path):
            found.append(f"{rel} (values)")
        if path.suffix == ".avro" and any(needle in b for b in avro_blocks(data)):
            found.append(f"{rel} (decompressed)")
    return found
