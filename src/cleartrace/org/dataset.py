"""The training dataset on disk: its files, hive-partitioned by day and device, and its manifest.

Layout, version 2 (docs/dataset.md documents it for the dataset's readers)::

    DATASET/events/day=YYYY-MM-DD/device=<16 hex>/part-<bundle>.{parquet,jsonl}
    DATASET/actions/day=YYYY-MM-DD/device=<16 hex>/part-<bundle>.{parquet,jsonl}
    DATASET/_cleartrace/manifest.json, events.features.json, actions.features.json

One bundle's kept rows go to one file per table and UTC day they span (an
action to the day it starts); the bundle's files of both tables change together. Every file is
written to a temporary name, synced and renamed, so a reader never sees half
of one; the manifest records, per bundle, what decided its rows and which
files hold them, which is how a re-run knows to leave a file alone, rewrite
it, or delete it. Files are created 0600 and directories 0700: the dataset
holds what people typed; share it through the data platform's access control.
The rows are shaped in org/rows.py and serialised in org/dataset_files.py.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from cleartrace.errors import UsageError
from cleartrace.faults import fault_point
from cleartrace.org.dataset_files import features_json, reader_schema, to_jsonl, to_parquet
from cleartrace.org.org_ledger import OrgLedgerFile
from cleartrace.org.rows import DATASET_VERSION, device_dir
from cleartrace.paths import exclusive_lock, write_private, write_private_bytes

__all__ = ["MANIFEST", "BundleEntry", "Dataset", "WriteResult"]

log = logging.getLogger(__name__)

_META = Path("_cleartrace")
MANIFEST = _META / "manifest.json"
_LOCK = Path("_cleartrace") / "lock"
_MANIFEST_TYPE = "cleartrace-dataset-manifest"
_DAY_US = 86_400 * 10**6


@dataclass
class BundleEntry:
    """What the manifest says of one bundle: its rows, what decided them, where they are."""

    device: str
    subject: str
    session: str | None
    key: str = ""
    digest: str = ""
    rows: int = 0
    actions: int = 0
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
            "actions": self.actions,
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
            actions=int(obj.get("actions", 0)),
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

    #: Where the rows are, as the manifest's "table" says: "directory" (these
    #: files) or "iceberg" (org/dataset_table.py). A dataset is only updated as
    #: what it was built as.
    TABLE = "directory"

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
            # Not upgraded in place: every file would move and change, and a crash
            # half way would leave rows of both versions. A new directory is
            # built whole, from the same store, while the old one stays readable.
            raise UsageError(
                f"{self.root} is a dataset of version {obj.get('v')}, and this ingest writes "
                f"version {DATASET_VERSION} (events/ and actions/ tables); ingest into a new "
                "directory with --heads-from the collector's data directory, then remove "
                "the old one (keep its _cleartrace/heads.json until the new one holds "
                "every device)"
            )
        if obj.get("org_key") != self.org_key:
            raise UsageError(
                f"{self.root} was built from bundles sealed to organisation key "
                f"{obj.get('org_key')}, and --keys holds {self.org_key}; give the keys it was "
                "built with, or ingest into a new directory"
            )
        table = obj.get("table", "directory")
        if table != self.TABLE:
            raise UsageError(
                f"{self.root} holds its rows as {table} (the manifest says so), not as "
                f"{self.TABLE}; give --table {table}"
            )
        self._loaded(obj)
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
            **self._extra(),
        }
        with write_private(self.manifest_path, "dataset manifest") as fh:
            json.dump(obj, fh, indent=1, sort_keys=True)
            fh.write("\n")

    def _loaded(self, obj: Mapping[str, Any]) -> None:
        """Read what a subclass keeps in the manifest besides the bundles."""

    def _extra(self) -> dict[str, Any]:
        """What a subclass keeps in the manifest besides the bundles."""
        return {}

    def settle(self, ledger: OrgLedgerFile) -> None:
        """Make removed rows physically gone, and record it in `ledger`. Here
        nothing is left to do: a file's rows go with the file (`_remove`)."""

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
        for path in sorted(self.root.glob("*/day=*/device=*/*")):
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
        have = {(f.split("/", 1)[0], f.rsplit(".", 1)[-1]) for f in entry.files}
        counts = {"events": entry.rows, "actions": entry.actions}
        wanted = {(t, fmt) for t, n in counts.items() if n for fmt in formats}
        if not wanted <= have or {t for t, _ in have} - {t for t, _ in wanted}:
            return False
        return all((self.root / f).is_file() for f in entry.files)

    def write(
        self,
        name: str,
        entry: BundleEntry,
        tables: Mapping[str, pa.Table],
        formats: Sequence[str],
    ) -> WriteResult:
        """Make the files of bundle `name` hold exactly `tables` (table name -> its
        rows as readers see them, in time order: org/rows.py, org/action_rows.py).

        `entry` carries the new key, digest and counts. When the digest equals
        the manifest's, existing files are kept and only missing formats are
        written; otherwise every file of the bundle, in both tables, is
        replaced, and files of formats not asked for are deleted (they would
        hold the old rows).

        Raises:
            UsageError: the dataset directory cannot be written.
            DiskFull: no room.
        """
        old = self.bundles.get(name)
        unchanged = old is not None and old.digest == entry.digest
        wanted: dict[str, tuple[pa.Table, str, str]] = {}
        for table, rows in tables.items():
            wanted.update(self._layout(table, name, entry.device, rows, formats))
        written: list[str] = []
        for rel, (rows, table, fmt) in wanted.items():
            path = self.root / rel
            if unchanged and path.is_file():
                continue
            self._mkdir(path.parent)
            data = to_parquet(rows, table) if fmt == "parquet" else to_jsonl(rows)
            write_private_bytes(path, data, "dataset file")
            fault_point("ingest.file")
            written.append(rel)
        for table, rows in tables.items():
            if rows.num_rows:
                self._features(table, rows)
        files = set(wanted)
        if unchanged and old is not None:
            files |= {f for f in old.files if (self.root / f).is_file()}
        removed = [f for f in (old.files if old is not None else []) if f not in files]
        for rel in removed:
            self._remove(rel)
        entry.files = sorted(files)
        self.bundles[name] = entry
        log.info(
            "bundle %s: %d rows, %d actions; %d files written, %d removed",
            name[:16],
            entry.rows,
            entry.actions,
            len(written),
            len(removed),
        )
        return WriteResult(tuple(written), tuple(removed))

    def _features(self, table: str, rows: pa.Table) -> None:
        """_cleartrace/<table>.features.json: the table's column types for readers
        that otherwise guess them from the first file they read (`datasets`'
        JSON loader); rewritten only when they change (a new version)."""
        path = self.root / _META / f"{table}.features.json"
        data = features_json(reader_schema(rows))
        if not path.is_file() or path.read_bytes() != data:
            self._mkdir(path.parent)
            write_private_bytes(path, data, "dataset features")

    def drop(self, name: str) -> tuple[str, ...]:
        """Delete every file of bundle `name` and forget it; returns the files removed."""
        old = self.bundles.pop(name, None)
        if old is None:
            return ()
        for rel in old.files:
            self._remove(rel)
        return tuple(old.files)

    def _layout(
        self, table: str, name: str, device: str, rows: pa.Table, formats: Sequence[str]
    ) -> dict[str, tuple[pa.Table, str, str]]:
        """relative path -> (that day's rows, table, format), one per UTC day and
        format. Each row goes to the day of its own `time`: the actions table is
        in (episode, step) order, not time order, so days are not contiguous."""
        out: dict[str, tuple[pa.Table, str, str]] = {}
        if rows.num_rows == 0:
            return out
        t = rows.column("time").combine_chunks().cast(pa.int64()).to_numpy()
        days = t // _DAY_US
        distinct = np.unique(days)
        for day in distinct.tolist():
            # One day (the usual bundle) keeps the table as it is; rows keep their order.
            part = rows if len(distinct) == 1 else rows.take(np.flatnonzero(days == day))
            label = _day_label(int(day))
            for fmt in formats:
                rel = f"{table}/day={label}/device={device_dir(device)}/part-{name}.{fmt}"
                out[rel] = (part, table, fmt)
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
        for directory in (path.parent, path.parent.parent, path.parent.parent.parent):
            with contextlib.suppress(OSError):
                directory.rmdir()


def _day_label(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()
