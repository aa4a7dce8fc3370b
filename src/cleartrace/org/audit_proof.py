"""The dataset coverage proof: every row of a dataset checked against its device's
verified consent ledger.

`prove(dataset, ledgers)` reads every data file (Parquet and JSON Lines, in
batches: memory stays bounded whatever the dataset's size) and holds each
row to the ledger of its device (org/proof_rules.py, on consent's own fold):
the row lies inside a consented, unpaused interval of its category, and no
withdrawal, deletion or redaction the ledger records is left unhonoured.
The dataset's own manifest is not trusted: someone who could change a data
file could change it too. A row of a device no ledger was given for is a
violation (`no-ledger`); so is a file that cannot be read as dataset rows
(`unreadable`, with `row` null).

Each violation names device, session, bundle, file, row (its index in the
file, from 0), time, category, rule and record (the seq of the ledger record
it contradicts, or None). At most `MAX_LISTED` are listed; the counts are
always exact. docs/dataset.md ("Proving coverage") describes it for the report's readers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from cleartrace.categories import Category
from cleartrace.errors import UsageError
from cleartrace.events import CATEGORY_OF_KIND, Kind
from cleartrace.org.proof_rules import CODES, DeviceLedger, Rows, category_of
from cleartrace.org.rows import SCHEMA, device_dir

__all__ = ["MAX_LISTED", "ProofResult", "dataset_digests", "prove"]

#: The categories actions are made of (org/actions.py).
_ACTION_CATEGORIES = (Category.CLICKS, Category.SCROLL, Category.KEYS)

#: Violations listed in full (each is also counted); enough to act on, bounded in size.
MAX_LISTED = 10_000
_BATCH = 256 * 1024
_COLUMNS = ("time", "device", "session", "bundle", "kind", "app", "title")
_JSON_SCHEMA = pa.schema([SCHEMA.field(c) for c in _COLUMNS])
#: An action's window: app_focus data, like its app (org/action_rows.py).
_WINDOW = ("window_x", "window_y", "window_width", "window_height")
#: An actions row: its span, and the category it is made of in place of a kind.
_ACTION_COLUMNS = (
    "time",
    "end",
    "device",
    "session",
    "bundle",
    "category",
    "app",
    "title",
    *_WINDOW,
)
_ACTION_JSON_SCHEMA = pa.schema(
    [
        pa.field(
            c,
            pa.timestamp("us", tz="UTC")
            if c in ("time", "end")
            else pa.int32()
            if c in _WINDOW
            else pa.string(),
        )
        for c in _ACTION_COLUMNS
    ]
)
_CATEGORY_NAMES = pa.array([c.value for c in _ACTION_CATEGORIES])
#: Each category's actions judged as an event of the category would be.
_KIND_OF_CATEGORY = pa.array(
    [next(k.name.lower() for k in Kind if CATEGORY_OF_KIND[k] is c) for c in _ACTION_CATEGORIES]
)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass
class _Figures:
    rows: int = 0
    rows_in_consent: int = 0
    violations: int = 0

    def as_json(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "rows_in_consent": self.rows_in_consent,
            "violations": self.violations,
        }


@dataclass
class ProofResult:
    """What the proof found: per device (fingerprint, or the dataset's 16-hex
    device value for a device without a ledger) its rows, the rows the ledger
    allows and the violations; the violations listed; the files read."""

    violations: list[dict[str, Any]] = field(default_factory=list)
    devices: dict[str, _Figures] = field(default_factory=dict)
    files: int = 0
    unreadable: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations and not any(f.violations for f in self.devices.values())

    def as_json(self) -> dict[str, Any]:
        """Per device {rows, rows_in_consent, violations}, plus totals. With both
        formats in the dataset each event is counted once per file holding it."""
        devices = {name: f.as_json() for name, f in sorted(self.devices.items())}
        return {
            "devices": devices,
            "totals": {
                "devices": len(devices),
                "files": self.files,
                "unreadable_files": self.unreadable,
                "rows": sum(f.rows for f in self.devices.values()),
                "rows_in_consent": sum(f.rows_in_consent for f in self.devices.values()),
                "violations": sum(f.violations for f in self.devices.values()) + self.unreadable,
                "violations_listed": len(self.violations),
            },
        }

    def _add(self, violation: dict[str, Any]) -> None:
        if len(self.violations) < MAX_LISTED:
            self.violations.append(violation)


def prove(dataset: Path, ledgers: Mapping[str, Sequence[Mapping[str, Any]]]) -> ProofResult:
    """Hold every row of `dataset` to `ledgers` (device fingerprint -> its verified
    records, oldest first).

    Raises:
        UsageError: `dataset` is not a directory.
        ValueError: a ledger record time is not a UTC time (a verified ledger has none).
    """
    if not dataset.is_dir():
        raise UsageError(f"{dataset} is not a dataset directory; give the directory ingest wrote")
    folded = {device_dir(fp): DeviceLedger.of(fp, records) for fp, records in ledgers.items()}
    result = ProofResult(devices={ledger.fingerprint: _Figures() for ledger in folded.values()})
    for path in _data_files(dataset):
        rel = path.relative_to(dataset).as_posix()
        result.files += 1
        try:
            offset = 0
            for batch in _batches(path, _is_actions(rel)):
                _prove_batch(result, folded, rel, offset, batch)
                offset += batch.num_rows
        except (OSError, pa.ArrowException, ValueError, KeyError) as exc:
            result.unreadable += 1
            result._add(_unreadable(rel, exc))
    return result


def dataset_digests(root: Path) -> dict[str, str]:
    """The SHA-256 of every file under the dataset directory (its manifest
    included), by path relative to it: what the audit relied on."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            digest = hashlib.sha256()
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            out[path.relative_to(root).as_posix()] = digest.hexdigest()
    return out


def _data_files(root: Path) -> Iterator[Path]:
    """Every .parquet and .jsonl file a reader of the dataset would read: hidden
    and `_` names (the manifest's directory, temporary files) are skipped, as
    Spark and DuckDB skip them."""
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if any(p.startswith((".", "_")) for p in parts):
            continue
        if path.suffix in (".parquet", ".jsonl") and (path.is_file() or path.is_symlink()):
            yield path


def _is_actions(rel: str) -> bool:
    """Whether a data file is of the actions table (its top directory, or the
    Iceberg table's under warehouse/: org/table.py); any other file is read as
    events rows."""
    return rel.startswith(("actions/", "warehouse/cleartrace/actions/"))


def _batches(path: Path, actions: bool) -> Iterator[pa.RecordBatch]:
    """The file's rows in batches of the columns the proof reads.

    Raises:
        OSError: a symbolic link (a dataset file lives in the dataset), or unreadable.
        pa.ArrowException, KeyError: not dataset rows.
    """
    if path.is_symlink():
        raise OSError(f"{path.name} is a symbolic link")
    columns, schema = (
        (_ACTION_COLUMNS, _ACTION_JSON_SCHEMA) if actions else (_COLUMNS, _JSON_SCHEMA)
    )
    if path.suffix == ".parquet":
        yield from pq.ParquetFile(path).iter_batches(batch_size=_BATCH, columns=list(columns))
        return
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    yield from pj.open_json(path, parse_options=options, read_options=pj.ReadOptions())


def _unreadable(rel: str, exc: BaseException) -> dict[str, Any]:
    return {
        "device": None,
        "session": None,
        "bundle": None,
        "file": rel,
        "row": None,
        "time": None,
        "category": None,
        "rule": "unreadable",
        "record": None,
        "reason": type(exc).__name__,
    }


def _column(batch: pa.RecordBatch, name: str) -> pa.Array:
    values = batch.column(name)
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    return values


def _prove_batch(
    result: ProofResult,
    folded: Mapping[str, DeviceLedger],
    rel: str,
    offset: int,
    batch: pa.RecordBatch,
) -> None:
    devices = _column(batch, "device")
    values = pc.unique(devices).to_pylist()
    for value in values:
        index: pa.Array | None = None  # the rows are the batch's: offset + position
        if len(values) == 1:
            part = batch
        else:
            mask = (
                pc.is_null(devices)
                if value is None
                else pc.fill_null(pc.equal(devices, value), False)
            )
            part = batch.filter(mask)
            index = pc.add(pc.indices_nonzero(mask), offset)
        _prove_device(result, folded.get(str(value)), str(value), rel, index, part, offset)


def _prove_device(
    result: ProofResult,
    ledger: DeviceLedger | None,
    device: str,
    rel: str,
    index: pa.Array | None,
    part: pa.RecordBatch,
    offset: int,
) -> None:
    rows = _rows(part)
    t_ns = rows.t_ns
    name = device if ledger is None else ledger.fingerprint
    figures = result.devices.setdefault(name, _Figures())
    n = part.num_rows
    figures.rows += n
    code = pa.repeat(pa.scalar(-1, pa.int8()), n) if ledger is None else ledger.verdict(rows)
    bad = pc.not_equal(code, 0)
    count = int(pc.sum(bad.cast(pa.int64())).as_py() or 0)
    figures.violations += count
    figures.rows_in_consent += n - count
    room = MAX_LISTED - len(result.violations)
    if not count or room <= 0:
        return
    where = pc.indices_nonzero(bad).slice(0, room)
    picked = {
        "t_ns": pc.take(t_ns, where).to_pylist(),
        "kind": pc.take(rows.kind, where).to_pylist(),
        "session": pc.take(rows.session, where).to_pylist(),
        "bundle": pc.take(rows.bundle, where).to_pylist(),
        "app": pc.take(rows.app, where).to_pylist(),
        "t_end": pc.take(rows.t_ns if rows.t_end is None else rows.t_end, where).to_pylist(),
        "code": pc.take(code, where).to_pylist(),
        "row": (pc.add(where, offset) if index is None else pc.take(index, where)).to_pylist(),
    }
    for i in range(len(where)):
        row = {k: v[i] for k, v in picked.items()}
        if ledger is None:
            rule, category, record = "no-ledger", category_of(row["kind"]), None
        else:
            rule = CODES[row["code"]]
            category, record = ledger.record_of(row["code"], row)
        result._add(
            {
                "device": name,
                "session": row["session"],
                "bundle": row["bundle"],
                "file": rel,
                "row": row["row"],
                "time": _utc(row["t_ns"]),
                "category": category,
                "rule": rule,
                "record": record,
            }
        )


def _rows(part: pa.RecordBatch) -> Rows:
    """The proof's view of a batch: events rows as they are; actions rows as an
    event of their category spanning [time, end] whose app and title are data
    of app_focus and window_titles.

    An action's window and title are its focus event's, which ingest keeps
    only where app_focus may be kept: an action carrying any of them is held
    to app_focus's rules as if it named its app (an empty one where the app
    column is null), and its title to window_titles' rules as well."""
    t_ns = pc.multiply(_column(part, "time").cast(pa.int64()), 1000)
    common = {
        "t_ns": t_ns,
        "session": _column(part, "session"),
        "bundle": _column(part, "bundle"),
        "app": _column(part, "app"),
        "title": _column(part, "title"),
    }
    if "kind" in part.schema.names:
        return Rows(kind=_column(part, "kind"), **common)
    index = pc.index_in(_column(part, "category"), value_set=_CATEGORY_NAMES)
    carried = pa.repeat(pa.scalar(True), part.num_rows)
    focus_data = pc.is_valid(common["title"])
    for name in _WINDOW:
        focus_data = pc.or_(focus_data, pc.is_valid(_column(part, name)))
    common["app"] = pc.coalesce(
        common["app"], pc.if_else(focus_data, pa.scalar(""), pa.scalar(None, pa.string()))
    )
    return Rows(
        kind=pc.take(_KIND_OF_CATEGORY, index),
        app_data=carried,
        title_data=carried,
        t_end=pc.multiply(_column(part, "end").cast(pa.int64()), 1000),
        **common,
    )


def _utc(t_ns: int | None) -> str | None:
    if t_ns is None:
        return None
    when = _EPOCH + dt.timedelta(microseconds=t_ns // 1000)
    return when.isoformat(timespec="microseconds").replace("+00:00", "Z")
