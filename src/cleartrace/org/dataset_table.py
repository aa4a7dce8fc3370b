"""The dataset kept as Iceberg tables (org/table.py) instead of a directory of files.

`TableDataset` is the `Dataset` ingest and the subject requests already
drive — the manifest, the heads, the lock, `up_to_date`, `write`, `drop`,
`save` — with the rows going to the tables `cleartrace.events` and
`cleartrace.actions` of a SQL catalog. `write` and `drop` only stage a
bundle's new rows (or none); `save` commits what is staged, one commit per
table, appending new bundles and replacing changed ones (row-level deletes
of their rows, then the new rows), and then writes the manifest.

A crash between the commit and the manifest must not leave rows the
manifest does not know of (a bundle rejected later would keep them): the
manifest is written first with the staged bundles listed as `pending`, and
the next run (`sweep`) deletes every pending bundle's rows and forgets its
entry, so it is ingested again from the store. `settle` expires the old
snapshots and removes the files no snapshot references — only then is a
deleted row gone from the disk — and records a receipt per table in the
officer side's org ledger (`table.purged`: snapshot id, files removed).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from cleartrace.errors import UsageError
from cleartrace.faults import fault_point
from cleartrace.org.dataset import MANIFEST, BundleEntry, Dataset, WriteResult
from cleartrace.org.org_ledger import OrgLedgerFile
from cleartrace.org.rows import device_dir
from cleartrace.org.table import (
    NAMESPACE,
    TABLE_SCHEMAS,
    WAREHOUSE,
    catalog_uri,
    open_catalog,
    open_table,
    purge,
    replace_bundles,
    subject_filter,
)
from cleartrace.org.table_checks import check_table, public_uri
from cleartrace.org.table_lock import catalog_lock

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.table import Table

__all__ = ["TableDataset", "kept_as", "open_dataset"]

log = logging.getLogger(__name__)

#: Staged rows from which `save` commits (else `settle` does, at the end of a
#: run): a commit per batch of devices rather than per device keeps commits,
#: and the metadata each rewrites, few; it is what a killed run ingests again.
BATCH_ROWS = 1_000_000


class TableDataset(Dataset):
    """The dataset's manifest and heads in DATASET/_cleartrace, its rows in Iceberg tables.

    `catalog` is a SQLAlchemy URI of the catalog (None: DATASET/catalog.db).
    The manifest records it (without a password) and each table's UUID: a
    run given another catalog, or whose catalog holds other tables of those
    names, is refused before it changes anything (a new catalog's tables
    would sit at the same location, and their purge would remove every file
    of the real ones).

    Raises:
        UsageError: the catalog is not the one the dataset was built with.
    """

    TABLE = "iceberg"

    def __init__(self, root: Path, org_key: str, catalog: str | None = None) -> None:
        #: The catalog the manifest records: its URI without a password (None: the
        #: default, DATASET/catalog.db), and each table's UUID.
        self._catalog: str | None = None
        self._uuids: dict[str, str] = {}
        #: Per table, the files of snapshots expired in this run that only they referenced.
        self._gone: dict[str, set[Path]] = {name: set() for name in TABLE_SCHEMAS}
        #: Partition values of the devices whose subject is erased in this run.
        self._erased: set[str] = set()
        #: Bundle name -> its device's partition value, while its commit is under way.
        self._pending: dict[str, str] = {}
        #: Bundle name -> (its device's partition value, its new entry or None when
        #: it is dropped, its rows per table), until `save`.
        self._staged: dict[str, tuple[str, BundleEntry | None, Mapping[str, pa.Table]]] = {}
        super().__init__(root, org_key)
        if catalog is not None and catalog == catalog_uri(root, None):
            catalog = None  # the default, spelt out
        given = None if catalog is None else public_uri(catalog)
        built = None if self._catalog is None else public_uri(self._catalog)
        if self._uuids and given != built:
            again = f"--catalog {built}" if built else "no --catalog"
            raise UsageError(
                f"the dataset {root} was built with the Iceberg catalog "
                f"{built or 'DATASET/catalog.db'}, not {given or 'DATASET/catalog.db'}: nothing "
                f"was changed; run it with {again} (its password in the URI or in PGPASSFILE)"
            )
        self._catalog = given
        self._mkdir(root)
        self.catalog: SqlCatalog = open_catalog(root, catalog, create=not self._uuids)
        self.warehouse = root / WAREHOUSE

    def subject_rows(self, subject: str, name: str) -> list[dict[str, Any]]:
        """The rows of table `name` (events or actions) of one pseudonymous subject."""
        found = self.table(name).scan(row_filter=subject_filter(subject)).to_arrow()
        return list(found.to_pylist())

    def table(self, name: str) -> Table:
        """The Iceberg table `name` (events or actions), created on first use."""
        return open_table(self.catalog, name)

    def _loaded(self, obj: Mapping[str, Any]) -> None:
        self._pending = {str(n): str(d) for n, d in obj.get("pending", {}).items()}
        recorded = obj.get("catalog", {})
        uri = recorded.get("uri")
        self._catalog = None if uri is None else str(uri)
        self._uuids = {str(n): str(u) for n, u in recorded.get("tables", {}).items()}

    def _extra(self) -> dict[str, Any]:
        catalog = {"uri": self._catalog, "tables": self._uuids}
        return {"table": self.TABLE, "pending": self._pending, "catalog": catalog}

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the dataset's lock and the catalog's writer row (org/table_lock.py),
        then check each table (`check`) before anything is changed.

        Raises:
            UsageError: another run holds either; a table is not safe to change.
        """
        try:
            with super().locked(), catalog_lock(self.catalog.engine, self._catalog or "catalog.db"):
                self.check()
                yield
        finally:
            self.close()

    def close(self) -> None:
        """Close the catalog's database connections (a server's, with PostgreSQL):
        a run holds them only while it runs. The catalog opens them again if used."""
        self.catalog.engine.dispose()

    def check(self) -> None:
        """Refuse, before anything is changed, a catalog whose tables are not the
        ones the manifest records (by UUID), and a table not safe to write and
        purge (org/table_checks.py); record the tables' UUIDs on first use.

        Raises:
            UsageError: as said.
        """
        from sqlalchemy.exc import SQLAlchemyError

        for name in TABLE_SCHEMAS:
            recorded = self._uuids.get(name)
            try:
                exists = recorded is None or self.catalog.table_exists((NAMESPACE, name))
            except SQLAlchemyError:
                exists = False  # the database has no Iceberg catalog tables
            found = str(self.table(name).metadata.table_uuid) if exists else None
            if recorded is not None and found != recorded:
                held = "no table" if found is None else f"another table (UUID {found}) as"
                raise UsageError(
                    f"the Iceberg catalog {self._catalog or 'DATASET/catalog.db'} holds {held} "
                    f"cleartrace.{name}, and the dataset {self.root} was built with the table "
                    f"of UUID {recorded}: nothing was changed; pass the --catalog it was built "
                    "with (a catalog whose table was dropped and made again is another table)"
                )
            check_table(self.table(name), name, self.root, self.warehouse)
        if not self._uuids:
            self._uuids = {n: str(self.table(n).metadata.table_uuid) for n in TABLE_SCHEMAS}
            super().save()

    def sweep(self) -> list[str]:
        """Stage the removal of the rows of bundles an interrupted commit left
        (`pending`), and forget them: ingest writes them again if they are
        still to be kept. Returns their names."""
        for name, device in self._pending.items():
            self.bundles.pop(name, None)
            self._staged[name] = (device, None, {})
        return sorted(self._pending)

    def up_to_date(self, name: str, key: str, formats: Sequence[str]) -> bool:
        """Whether bundle `name`'s rows were written under coverage `key`."""
        entry = self.bundles.get(name)
        return entry is not None and entry.key == key and name not in self._staged

    def write(
        self,
        name: str,
        entry: BundleEntry,
        tables: Mapping[str, pa.Table],
        formats: Sequence[str],
    ) -> WriteResult:
        """Stage bundle `name`'s rows: `save` commits them (formats do not apply)."""
        old = self.bundles.get(name)
        if old is not None and old.digest == entry.digest:
            self.bundles[name] = entry  # the same rows: nothing to commit
            return WriteResult((), ())
        self._staged[name] = (device_dir(entry.device), entry, tables)
        return WriteResult((), ())

    def drop(self, name: str) -> tuple[str, ...]:
        """Stage the removal of every row of bundle `name`; `save` commits it."""
        old = self.bundles.get(name)
        if old is None:
            return ()
        self._staged[name] = (device_dir(old.device), None, {})
        return ()

    def save(self) -> None:
        """Commit what is staged once it is `BATCH_ROWS` rows or more, then
        write the manifest (of what is committed: a bundle staged and not
        yet committed is not in it, so a killed run ingests it again).

        Raises:
            UsageError: the directory cannot be written.
            DiskFull: no room.
        """
        staged = sum(t.num_rows for _, _, rows in self._staged.values() for t in rows.values())
        if staged >= BATCH_ROWS:
            self._flush()
        super().save()

    def _flush(self) -> None:
        """Commit what is staged, the manifest naming it `pending` until it is."""
        if not self._staged:
            return
        # With what an earlier killed run left pending and no `sweep` staged
        # (an erasure does not sweep): those stay pending until swept.
        staged = {name: device for name, (device, _, _) in self._staged.items()}
        self._pending = {**self._pending, **staged}
        super().save()
        self._commit()
        fault_point("table.committed")
        for name, (_, entry, _) in self._staged.items():
            if entry is None:
                self.bundles.pop(name, None)
            else:
                self.bundles[name] = entry
        self._pending = {n: d for n, d in self._pending.items() if n not in staged}
        self._staged.clear()
        super().save()

    def _commit(self) -> None:
        """One commit per table: the staged bundles' old rows deleted, their new
        ones appended, a device at a time."""
        replace: dict[str, set[str]] = {}
        for name, (device, _, _) in self._staged.items():
            replace.setdefault(device, set()).add(name)
        for table in TABLE_SCHEMAS:
            # Cast to the table's schema: plain strings, and its required columns.
            schema = TABLE_SCHEMAS[table]
            by_device: dict[str, list[pa.Table]] = {}
            for device, _, rows in self._staged.values():
                part = rows.get(table)
                if part is not None and part.num_rows:
                    by_device.setdefault(device, []).append(part.cast(schema))
            parts = [pa.concat_tables(by_device[d]) for d in sorted(by_device)]
            self._gone[table] |= replace_bundles(self.table(table), replace, parts)
        log.info("table: %d bundles committed", len(self._staged))

    def erasing(self, devices: Iterable[str]) -> None:
        """Have `settle` remove every file no snapshot lists in these devices'
        partitions, however young: a killed run's copy of an erased subject's
        rows must not wait for the grace period."""
        self._erased |= {device_dir(device) for device in devices}

    def settle(self, ledger: OrgLedgerFile) -> None:
        """Expire old snapshots and remove unreferenced files, per table; record
        a `table.purged` receipt for each table that lost files. What is still
        staged is committed first."""
        self._flush()
        for name in TABLE_SCHEMAS:
            done = purge(self.table(name), name, self.warehouse, self._gone[name], self._erased)
            self._gone[name] = set()
            if done.removed and done.snapshot is not None:
                ledger.append(
                    "table.purged",
                    table=name,
                    snapshot=str(done.snapshot),
                    files=len(done.removed),
                    digest=done.digest,
                )


def kept_as(root: Path) -> str:
    """What the dataset at `root` keeps its rows as, by its manifest: "directory"
    or "iceberg" (a directory without a manifest: "directory")."""
    try:
        obj = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return Dataset.TABLE  # Dataset itself says what is wrong with it, if anything
    return str(obj.get("table", Dataset.TABLE)) if isinstance(obj, dict) else Dataset.TABLE


def open_dataset(
    root: Path, org_key: str, table: str | None = "directory", catalog: str | None = None
) -> Dataset:
    """The dataset at `root` as `table` says: a directory of files, or Iceberg
    tables (`table` None: as its manifest says, `kept_as`)."""
    table = kept_as(root) if table is None else table
    if table == TableDataset.TABLE:
        return TableDataset(root, org_key, catalog)
    return Dataset(root, org_key)
