"""The training dataset: Parquet and JSON Lines files, hive-partitioned by day and device.

Layout (docs/dataset.md documents it for the dataset's readers)::

    DATASET/day=YYYY-MM-DD/device=<16 hex>/part-<bundle>.parquet
    DATASET/day=YYYY-MM-DD/device=<16 hex>/part-<bundle>.jsonl
    DATASET/_cleartrace/manifest.json

One bundle's kept rows go to one file per UTC day they span. Every file is
written to a temporary name, synced and renamed, so a reader never sees half
of one; the manifest records, per bundle, what decided its rows and which
files hold them, which is how a re-run knows to leave a file alone, rewrite
it, or delete it. Files are created 0600 and directories 0700: the dataset
holds what people typed; share it through the data platform's access control.

Columns are built with pyarrow.compute over the whole table. Constant
columns (device, subject, session, bundle) and the kind and category are
dictionary-encoded in memory, which Parquet stores as its own dictionary
pages; readers see plain strings (the Arrow schema is not stored in the
file, so pyarrow does not restore the in-memory dictionary type either).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cleartrace.consent.coverage_arrow import first_at_or_after
from cleartrace.errors import UsageError
from cleartrace.events import CATEGORY_OF_KIND, Kind, char_of_keysym
from cleartrace.faults import fault_point
from cleartrace.org import FORMATS
from cleartrace.paths import exclusive_lock, write_private, write_private_bytes
from cleartrace.review.export import key_name

__all__ = [
    "DATASET_VERSION",
    "FORMATS",
    "MANIFEST",
    "SCHEMA",
    "BundleEntry",
    "Dataset",
    "device_dir",
    "rows_table",
    "to_jsonl",
]

log = logging.getLogger(__name__)

DATASET_VERSION = 1
MANIFEST = Path("_cleartrace") / "manifest.json"
_LOCK = Path("_cleartrace") / "lock"
_MANIFEST_TYPE = "cleartrace-dataset-manifest"
_DAY_NS = 86_400 * 10**9

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
        pa.field("app", pa.string()),
        pa.field("title", pa.string()),
    ],
    metadata={"cleartrace.dataset.version": str(DATASET_VERSION)},
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
_NULL_INT = pa.scalar(None, pa.int32())
_NULL_STR = pa.scalar(None, pa.string())


def device_dir(device: str) -> str:
    """The partition value of a device: the first 16 hex digits of its fingerprint."""
    return device.removeprefix("sha256:")[:16]


def _constant(value: str, n: int) -> pa.DictionaryArray:
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


def rows_table(
    events: pa.Table, *, device: str, subject: str, session: str, bundle: str
) -> pa.Table:
    """The dataset rows of kept events (`EVENT_SCHEMA`, only known kinds).

    The result has SCHEMA's names and order; the string columns that repeat
    are dictionary-encoded (`SCHEMA` is what a reader sees).
    """
    n = events.num_rows
    t = events.column("t_ns").combine_chunks()
    kind = events.column("kind").combine_chunks()
    a, b, c, d = (events.column(x).combine_chunks() for x in "abcd")
    is_key = pc.is_in(kind, pa.array(_KEYS, pa.uint8()))
    is_pointer = pc.is_in(kind, pa.array(_POINTER, pa.uint8()))
    is_button = pc.is_in(kind, pa.array(_BUTTONS, pa.uint8()))
    is_scroll = pc.equal(kind, int(Kind.SCROLL))
    is_marker = pc.is_in(kind, pa.array(_MARKERS, pa.uint8()))
    is_focus = pc.equal(kind, int(Kind.FOCUS))
    keysym = _where(is_key, a)
    char, key = _key_columns(keysym)
    kind_index = kind.cast(pa.int16())
    category_index = pc.if_else(is_marker, pa.scalar(None, pa.int16()), kind_index)
    columns = [
        pc.divide(t, 1000).cast(pa.timestamp("us", tz="UTC")),
        _constant(device_dir(device), n),
        _constant(subject, n),
        _constant(session, n),
        _constant(bundle, n),
        pa.DictionaryArray.from_arrays(kind_index, _KIND_NAMES),
        pa.DictionaryArray.from_arrays(category_index, _CATEGORY_NAMES),
        keysym,
        char,
        key,
        _where(is_pointer, a),
        _where(is_pointer, b),
        _where(is_button, c),
        _where(is_scroll, c),
        _where(is_scroll, d),
        # Only a focus event names an application or a title (coverage reports
        # any other row carrying one as a violation and clears it).
        pc.if_else(is_focus, events.column("app").combine_chunks(), _NULL_STR),
        pc.if_else(is_focus, events.column("title").combine_chunks(), _NULL_STR),
    ]
    return pa.Table.from_arrays(columns, names=SCHEMA.names)


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


def _parquet_bytes(rows: pa.Table) -> bytes:
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


# -- the manifest and the files ----------------------------------------------------------


@dataclass
class BundleEntry:
    """What the manifest says of one bundle: its rows, what decided them, where they are."""

    device: str
    subject: str
    session: str | None
    key: str = ""
    digest: str = ""
    rows: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    titles_removed: dict[str, int] = field(default_factory=dict)
    violations: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "subject": self.subject,
            "session": self.session,
            "key": self.key,
            "digest": self.digest,
            "rows": self.rows,
            "dropped": self.dropped,
            "titles_removed": self.titles_removed,
            "violations": self.violations,
            "files": self.files,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> BundleEntry:
        return cls(
            device=str(obj["device"]),
            subject=str(obj["subject"]),
            session=None if obj.get("session") is None else str(obj["session"]),
            key=str(obj.get("key", "")),
            digest=str(obj.get("digest", "")),
            rows=int(obj.get("rows", 0)),
            dropped={str(k): int(v) for k, v in obj.get("dropped", {}).items()},
            titles_removed={str(k): int(v) for k, v in obj.get("titles_removed", {}).items()},
            violations={str(k): int(v) for k, v in obj.get("violations", {}).items()},
            files=[str(f) for f in obj.get("files", [])],
        )


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Files of one bundle written and removed by one `Dataset.write` call."""

    written: tuple[str, ...]
    removed: tuple[str, ...]


class Dataset:
    """The dataset directory and its manifest.

    `org_key` is the fingerprint of the organisation key the bundles were
    opened with; a dataset built with one key is never updated with another
    (a wrong --keys would otherwise look like every bundle being rejected).
    """

    def __init__(self, root: Path, org_key: str) -> None:
        self.root = root
        self.org_key = org_key
        self.bundles: dict[str, BundleEntry] = {}
        #: Whether `_cleartrace/heads.json` was written for this dataset (org.heads):
        #: then its absence is a deletion, not a dataset from before it existed.
        self.heads_tracked = False
        self._load()

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def _load(self) -> None:
        path = self.manifest_path
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(
                f"cannot read the dataset manifest {path} ({type(exc).__name__}); "
                "move the dataset away and ingest again into an empty directory"
            ) from None
        if not isinstance(obj, dict) or obj.get("type") != _MANIFEST_TYPE:
            raise UsageError(f"{path} is not a ClearTrace dataset manifest")
        if obj.get("v") != DATASET_VERSION:
            raise UsageError(
                f"{self.root} was written by another dataset version; ingest into a new directory"
            )
        if obj.get("org_key") != self.org_key:
            raise UsageError(
                f"{self.root} was built from bundles sealed to organisation key "
                f"{obj.get('org_key')}, and --keys holds {self.org_key}; give the keys it was "
                "built with, or ingest into a new directory"
            )
        self.heads_tracked = obj.get("heads_tracked") is True
        try:
            self.bundles = {
                str(name): BundleEntry.from_json(entry)
                for name, entry in obj.get("bundles", {}).items()
            }
        except (KeyError, TypeError, ValueError, AttributeError):
            raise UsageError(
                f"the dataset manifest {path} is damaged; move the dataset away and ingest again"
            ) from None

    def save(self) -> None:
        """Write the manifest all or nothing.

        Raises:
            UsageError: the directory cannot be written.
            DiskFull: no room.
        """
        self._mkdir(self.manifest_path.parent)
        obj = {
            "v": DATASET_VERSION,
            "type": _MANIFEST_TYPE,
            "org_key": self.org_key,
            "heads_tracked": self.heads_tracked,
            "bundles": {name: e.as_json() for name, e in sorted(self.bundles.items())},
        }
        with write_private(self.manifest_path, "dataset manifest") as fh:
            json.dump(obj, fh, indent=1, sort_keys=True)
            fh.write("\n")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold DATASET/_cleartrace/lock: one ingest per dataset at a time.

        Raises:
            UsageError: another ingest holds it, or the directory cannot be written.
        """
        self._mkdir(self.root / _LOCK.parent)
        busy = f"another ingest is writing {self.root}; wait for it to finish"
        with exclusive_lock(self.root / _LOCK, busy):
            yield

    def _mkdir(self, directory: Path) -> None:
        """Create `directory` and the levels up to the dataset root, each 0700:
        even the partition names say which devices were active on which days."""
        missing = [d for d in (directory, *directory.parents) if not d.exists()]
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            for made in missing:
                os.chmod(made, 0o700)  # mkdir's parents follow the umask
        except OSError as exc:
            raise UsageError(
                f"cannot create {directory}: {exc.strerror}; choose a dataset directory "
                "you can write to"
            ) from exc

    def sweep(self) -> list[str]:
        """Remove data files the manifest does not list (a run interrupted after
        writing them, before saving the manifest); returns them. Their rows may
        be ones a later withdrawal covers, so nothing unlisted may stay."""
        listed = {rel for entry in self.bundles.values() for rel in entry.files}
        removed = []
        for path in sorted(self.root.glob("day=*/device=*/*")):
            rel = path.relative_to(self.root).as_posix()
            if rel not in listed and path.is_file():
                self._remove(rel)
                removed.append(rel)
        return removed

    def up_to_date(self, name: str, key: str, formats: Sequence[str]) -> bool:
        """Whether bundle `name`'s files were written under coverage `key` and all
        files of `formats` are there: then nothing about it needs doing."""
        entry = self.bundles.get(name)
        if entry is None or entry.key != key:
            return False
        return self._complete(name, entry, formats)

    def _complete(self, name: str, entry: BundleEntry, formats: Sequence[str]) -> bool:
        if entry.rows == 0:
            return not entry.files
        have = {f.rsplit(".", 1)[-1] for f in entry.files}
        if not set(formats) <= have:
            return False
        return all((self.root / f).is_file() for f in entry.files)

    def write(
        self,
        name: str,
        entry: BundleEntry,
        events: pa.Table,
        formats: Sequence[str],
    ) -> WriteResult:
        """Make the files of bundle `name` hold exactly `events` (kept, sorted by time).

        `entry` carries the new key, digest and counts. When the digest equals
        the manifest's, existing files are kept and only missing formats are
        written; otherwise every file of the bundle is replaced, and files of
        formats not asked for are deleted (they would hold the old rows).

        Raises:
            UsageError: the dataset directory cannot be written.
            DiskFull: no room.
        """
        old = self.bundles.get(name)
        unchanged = old is not None and old.digest == entry.digest
        wanted = self._layout(name, entry.device, events, formats)
        keep_others = unchanged and old is not None
        written: list[str] = []
        for rel, (rows, fmt) in wanted.items():
            path = self.root / rel
            if unchanged and path.is_file():
                continue
            self._mkdir(path.parent)
            table = rows_table(
                rows,
                device=entry.device,
                subject=entry.subject,
                session=entry.session or "",
                bundle=name,
            )
            data = _parquet_bytes(table) if fmt == "parquet" else to_jsonl(table)
            write_private_bytes(path, data, "dataset file")
            fault_point("ingest.file")
            written.append(rel)
        files = set(wanted)
        if keep_others and old is not None:
            files |= {f for f in old.files if (self.root / f).is_file()}
        removed = [f for f in (old.files if old is not None else []) if f not in files]
        for rel in removed:
            self._remove(rel)
        entry.files = sorted(files)
        self.bundles[name] = entry
        log.info(
            "bundle %s: %d rows; %d files written, %d removed",
            name[:16],
            entry.rows,
            len(written),
            len(removed),
        )
        return WriteResult(tuple(written), tuple(removed))

    def drop(self, name: str) -> tuple[str, ...]:
        """Delete every file of bundle `name` and forget it; returns the files removed."""
        old = self.bundles.pop(name, None)
        if old is None:
            return ()
        for rel in old.files:
            self._remove(rel)
        return tuple(old.files)

    def _layout(
        self, name: str, device: str, events: pa.Table, formats: Sequence[str]
    ) -> dict[str, tuple[pa.Table, str]]:
        """relative path -> (that day's rows, format), one per UTC day and format."""
        out: dict[str, tuple[pa.Table, str]] = {}
        if events.num_rows == 0:
            return out
        t = events.column("t_ns").combine_chunks()
        first, last = t[0].as_py() // _DAY_NS, t[len(t) - 1].as_py() // _DAY_NS
        start = 0
        for day in range(first, last + 1):
            end = first_at_or_after(t, (day + 1) * _DAY_NS) if day < last else len(t)
            if end > start:
                label = _day_label(day)
                for fmt in formats:
                    rel = f"day={label}/device={device_dir(device)}/part-{name}.{fmt}"
                    out[rel] = (events.slice(start, end - start), fmt)
            start = end
        return out

    def _remove(self, rel: str) -> None:
        path = self.root / rel
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise UsageError(
                f"cannot remove {path}: {exc.strerror}; its rows must go — remove it by hand"
            ) from exc
        fault_point("ingest.removed")
        # Empty partition directories go too; a non-empty one stays.
        for directory in (path.parent, path.parent.parent):
            with contextlib.suppress(OSError):
                directory.rmdir()


def _day_label(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()
