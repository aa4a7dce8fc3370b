"""The dataset as Apache Iceberg tables, through pyiceberg and a SQL catalog.

`cleartrace org ingest --table iceberg` writes the same two tables as the
Parquet directory (events and actions, docs/dataset.md) as the Iceberg tables
`cleartrace.events` and `cleartrace.actions`, so engines built for data of
this size (Spark, Trino, DuckDB) read and maintain them. The catalog is a
SQL one: a SQLite file in the dataset directory by default (no server, like
the rest of the embedded defaults), or a PostgreSQL database by URI. The
warehouse (data and metadata files) is under the dataset directory.

Both tables are partitioned by `day(time)` and `device`, as the directory is.
Ingest appends a bundle's rows, and replaces them (a row-level delete of the
bundle's rows, then an append, in one commit) when a withdrawal, deletion or
redaction changed them. A delete in Iceberg only stops the next snapshot
from referencing the rows: the earlier snapshots, and so their files, still
hold them. `purge` is what makes them physically gone: it expires every
snapshot but the current one and removes the files only the expired ones
referenced — pyiceberg has snapshot expiry but no file removal, so that
part is here (`expire`, `referenced`, `remove_unreferenced`). A file no
snapshot references is removed only once it is an hour old (`GRACE`):
until then it may be another writer's commit under way.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from cleartrace.errors import UsageError
from cleartrace.org.action_rows import ACTIONS_SCHEMA
from cleartrace.org.rows import SCHEMA
from cleartrace.org.table_checks import inside, local_path

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.manifest import ManifestFile
    from pyiceberg.table import Table
    from pyiceberg.types import NestedField

__all__ = [
    "GRACE",
    "NAMESPACE",
    "TABLE_SCHEMAS",
    "Purged",
    "bundle_filter",
    "catalog_uri",
    "expire",
    "open_catalog",
    "open_table",
    "purge",
    "referenced",
    "remove_unreferenced",
    "replace_bundles",
    "subject_filter",
]

log = logging.getLogger(__name__)

#: The catalog namespace of the dataset's tables.
NAMESPACE = "cleartrace"
#: Each table's columns, as readers see them (the Parquet directory's schemas).
TABLE_SCHEMAS: Mapping[str, pa.Schema] = {"events": SCHEMA, "actions": ACTIONS_SCHEMA}
#: The SQLite catalog file and the warehouse, inside the dataset directory.
CATALOG_FILE = "catalog.db"
WAREHOUSE = "warehouse"
#: Seconds a file no snapshot references is left alone by the purge: another
#: host's commit under way has written its files and not yet committed them.
GRACE = 3600.0
#: Table properties: the metadata log names one earlier metadata file (the
#: purge removes the rest: they name expired snapshots); Parquet in zstd.
_PROPERTIES = {
    "write.metadata.previous-versions-max": "1",
    # A commit adds a manifest; merged past 100 (the default), so that a table
    # appended to per batch keeps few manifests to read when a query is planned.
    "commit.manifest-merge.enabled": "true",
    "write.parquet.compression-codec": "zstd",
}


def catalog_uri(root: Path, catalog: str | None) -> str:
    """The SQLAlchemy URI of the catalog: `catalog`, or the SQLite file in `root`."""
    return f"sqlite:///{root / CATALOG_FILE}" if catalog is None else catalog


def open_catalog(root: Path, catalog: str | None, *, create: bool = True) -> SqlCatalog:
    """The SQL catalog of the dataset at `root`, its tables created on first use.

    `create` False: a catalog that is not there (no catalog.db, no catalog
    tables in the database) is not made: a dataset with tables already needs
    the one it was built with, and a new one would hold none of them.

    Raises:
        UsageError: the catalog cannot be reached or is not a SQL catalog; or
            (`create` False) it is not there.
    """
    from pyiceberg.catalog.sql import SqlCatalog
    from sqlalchemy.exc import SQLAlchemyError

    warehouse = root / WAREHOUSE
    warehouse.mkdir(mode=0o700, parents=True, exist_ok=True)
    uri = catalog_uri(root, catalog)
    if not create and catalog is None and not (root / CATALOG_FILE).exists():
        raise UsageError(
            f"{root / CATALOG_FILE} is missing, and the dataset {root} has Iceberg tables "
            "recorded in it: restore it (a new catalog would not know the tables), or pass "
            "the --catalog the dataset was built with"
        )
    if catalog is None and not (root / CATALOG_FILE).exists():
        # Created private: it names the tables and where their files are.
        os.close(os.open(root / CATALOG_FILE, os.O_CREAT | os.O_WRONLY, 0o600))
    try:
        init = "true" if create else "false"
        made = SqlCatalog(
            NAMESPACE, uri=uri, warehouse=warehouse.as_uri(), init_catalog_tables=init
        )
        if create:
            made.create_namespace_if_not_exists(NAMESPACE)
    except (SQLAlchemyError, ValueError) as exc:
        where = "the SQLite catalog in the dataset" if catalog is None else "--catalog"
        raise UsageError(
            f"cannot open the Iceberg catalog ({type(exc).__name__}); check {where}: a "
            "SQLAlchemy URI such as postgresql+psycopg://user@host/db, reachable and writable"
        ) from None
    return made


def open_table(catalog: SqlCatalog, name: str) -> Table:
    """The table `name` (events or actions), created with its schema and partitioning."""
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import DayTransform, IdentityTransform

    identifier = (NAMESPACE, name)
    if catalog.table_exists(identifier):
        return catalog.load_table(identifier)
    arrow = TABLE_SCHEMAS[name]
    schema = Schema(*_fields(arrow))
    spec = PartitionSpec(
        PartitionField(schema.find_field("time").field_id, 1000, DayTransform(), "day"),
        PartitionField(schema.find_field("device").field_id, 1001, IdentityTransform(), "device"),
    )
    return catalog.create_table_if_not_exists(
        identifier, schema=schema, partition_spec=spec, properties=_PROPERTIES
    )


def _fields(arrow: pa.Schema) -> list[NestedField]:
    """The Iceberg fields of an Arrow schema, numbered from 1 in its order."""
    from pyiceberg.io.pyarrow import pyarrow_to_schema
    from pyiceberg.table.name_mapping import MappedField, NameMapping

    mapping = NameMapping(
        [
            MappedField.model_validate({"field-id": i, "names": [f.name]})
            for i, f in enumerate(arrow, 1)
        ]
    )
    return list(pyarrow_to_schema(arrow, name_mapping=mapping).fields)


def _hex(value: str) -> str:
    """`value` quoted for a row filter; only hex ids are ever put in one."""
    if not value or any(c not in "0123456789abcdef" for c in value):
        raise ValueError("a row filter takes hex ids only")
    return f"'{value}'"


def bundle_filter(bundles: Mapping[str, Iterable[str]]) -> BooleanExpression:
    """Rows of these bundles, per device partition: the device names a
    partition, so a delete reads only that device's files."""
    from pyiceberg.expressions import AlwaysFalse
    from pyiceberg.expressions.parser import parse

    terms = [
        f"(device = {_hex(device)} AND bundle IN ({', '.join(map(_hex, sorted(names)))}))"
        for device, names in sorted(bundles.items())
    ]
    return parse(" OR ".join(terms)) if terms else AlwaysFalse()


def subject_filter(subject: str) -> BooleanExpression:
    """Rows of one pseudonymous subject."""
    from pyiceberg.expressions.parser import parse

    return parse(f"subject = {_hex(subject)}")


def replace_bundles(
    table: Table, bundles: Mapping[str, Iterable[str]], rows: Sequence[pa.Table]
) -> set[Path]:
    """Delete every row of `bundles` (device partition -> bundle names) and
    append `rows` (each in the table's schema), in one commit: a reader sees
    the bundles' old rows or their new ones, never both or neither.

    Each of `rows` is appended by itself: give one device's rows in each, so
    that pyiceberg's split into partitions (a pass over all the rows for each
    partition found in them) sees that device's few days only; appending day
    by day instead copied the rows once more and cost more per append than
    it saved. The snapshots before the commit's last are expired after it:
    the metadata, rewritten at every commit, stays the size of one snapshot.
    Returns the files only those snapshots referenced: `purge` removes them."""
    tx = table.transaction()
    if bundles:
        with warnings.catch_warnings():
            # "did not match any records": a new bundle has none yet.
            warnings.simplefilter("ignore", UserWarning)
            tx.delete(bundle_filter(bundles))
    for part in rows:
        if part.num_rows:
            tx.append(part)
    tx.commit_transaction()
    return expire(table.refresh())


def _live(table: Table, manifests: Iterable[ManifestFile]) -> set[Path]:
    """The data and delete files `manifests` list as live (not as deleted)."""
    return {
        local_path(entry.data_file.file_path)
        for manifest in manifests
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True)
    }


def expire(table: Table) -> set[Path]:
    """Expire every snapshot no ref (main, a tag, a branch) points at; returns
    the files those snapshots referenced and the ones kept do not: their
    manifest lists, their manifests and the data files listed live in them.

    What is returned is exactly what erasure must remove, computed while the
    expired snapshots can still be read; a file another writer has written
    and not yet committed is never in it."""
    pinned = {ref.snapshot_id for ref in table.metadata.refs.values()}
    old = [s for s in table.metadata.snapshots if s.snapshot_id not in pinned]
    if not old:
        return set()
    kept = [s for s in table.metadata.snapshots if s.snapshot_id in pinned]
    kept_manifests = {m.manifest_path: m for s in kept for m in s.manifests(table.io)}
    old_manifests = {m.manifest_path: m for s in old for m in s.manifests(table.io)}
    dropped = [m for path, m in old_manifests.items() if path not in kept_manifests]
    gone = {local_path(m.manifest_path) for m in dropped}
    gone |= {local_path(s.manifest_list) for s in old} - {local_path(s.manifest_list) for s in kept}
    data = _live(table, dropped)
    if data:  # a data file may have moved to a manifest the kept snapshots list
        data -= _live(table, kept_manifests.values())
    table.maintenance.expire_snapshots().by_ids([s.snapshot_id for s in old]).commit()
    return gone | data


def referenced(table: Table) -> set[Path]:
    """Every file the table's metadata needs: the metadata file, and for every
    snapshot (the current one, and any a tag or branch pins) its manifest list,
    its manifests and their live data and delete files (entries marked deleted
    are not needed)."""
    keep = {local_path(table.metadata_location)}
    manifests = {}
    for snapshot in table.metadata.snapshots:
        keep.add(local_path(snapshot.manifest_list))
        manifests.update({m.manifest_path: m for m in snapshot.manifests(table.io)})
    keep |= {local_path(path) for path in manifests}
    keep |= _live(table, manifests.values())
    for stats in [*table.metadata.statistics, *table.metadata.partition_statistics]:
        keep.add(local_path(stats.statistics_path))
    return keep


def _version(path: Path) -> int | None:
    """The version of a metadata file named <version>-<uuid>.metadata.json."""
    head = path.name.partition("-")[0]
    return int(head) if path.name.endswith(".metadata.json") and head.isdigit() else None


def remove_unreferenced(
    location: Path,
    warehouse: Path,
    keep: set[Path],
    gone: set[Path],
    erased: Iterable[str] = (),
    grace: float = GRACE,
) -> list[Path]:
    """Remove files under `location`'s data/ and metadata/ not in `keep`: those in
    `gone` (the files expired snapshots alone referenced), metadata files of a
    version older than the current one (`keep`'s), files in the partitions of
    the devices `erased` (partition values: a subject erased), and any other
    file last changed `grace` seconds ago or more (what a killed run wrote
    and never committed); returns them. A file another writer wrote for a
    commit still under way is younger than that, and stays — unless it holds
    rows of an erased device, which must not come back.

    Symbolic links are not followed, nothing outside the two directories
    Iceberg writes is touched, and each file is checked to be in `warehouse`
    before it is removed.

    Raises:
        UsageError: `location` is not inside `warehouse`.
    """
    if not inside(location, warehouse):
        raise UsageError(
            f"the table at {location} is outside {warehouse}; nothing was removed: give the "
            "--catalog the dataset was built with"
        )
    current = max((v for v in map(_version, keep) if v is not None), default=0)
    cutoff = time.time() - grace
    partitions = {f"device={device}" for device in erased}
    removed = []
    for part in ("data", "metadata"):
        top = location / part
        if top.is_symlink() or not top.is_dir():
            continue
        for directory, dirs, files in os.walk(top, topdown=False, followlinks=False):
            for name in sorted(files):
                path = Path(directory) / name
                if path in keep or path.is_symlink() or not inside(path, warehouse):
                    continue
                version = _version(path)
                old = path.lstat().st_mtime <= cutoff or path.parent.name in partitions
                if path in gone or (version is not None and version < current) or old:
                    path.unlink()
                    removed.append(path)
            for name in dirs:
                sub = Path(directory) / name
                if not sub.is_symlink() and not any(sub.iterdir()):
                    sub.rmdir()  # an emptied partition
    return sorted(removed)


@dataclass(frozen=True)
class Purged:
    """What one purge of one table did: the snapshot kept, the files removed."""

    table: str
    snapshot: int | None
    expired: int
    removed: tuple[str, ...]

    @property
    def digest(self) -> str:
        """SHA-256 of the removed files' names relative to the table, one per line:
        the receipt binds the list without holding it."""
        return hashlib.sha256("".join(f"{r}\n" for r in self.removed).encode()).hexdigest()


def purge(
    table: Table, name: str, warehouse: Path, gone: Iterable[Path] = (), erased: Iterable[str] = ()
) -> Purged:
    """Expire every snapshot but the current one, then remove the files only
    the expired ones referenced (with `gone`: those of snapshots expired
    earlier in the run), older metadata files, and unreferenced files older
    than `GRACE` or in the partitions of the devices `erased`: what a delete
    took out of the table is then gone from the disk too — its data files, and
    the manifests that named them with their columns' lower and upper bounds.

    Raises:
        UsageError: the table's location is outside `warehouse`, before anything changes.
    """
    location = local_path(table.location())
    if not inside(location, warehouse):
        remove_unreferenced(location, warehouse, set(), set())  # raises
    current = table.current_snapshot()
    if current is not None and any(
        bool(m.deleted_files_count) for m in current.manifests(table.io)
    ):
        # A delete's snapshot lists the files it removed, with their column
        # bounds (values of the deleted rows), in a manifest of its own; an
        # append that adds nothing leaves that manifest behind.
        table.append(TABLE_SCHEMAS[name].empty_table())
    expired = len(table.metadata.snapshots) - 1
    gone = {*gone, *expire(table)}
    table = table.refresh()
    snapshot = table.current_snapshot()
    removed = remove_unreferenced(location, warehouse, referenced(table), gone, erased)
    rel = tuple(p.relative_to(location).as_posix() for p in removed)
    log.info("table %s: %d snapshots expired, %d files removed", name, expired, len(rel))
    return Purged(name, None if snapshot is None else snapshot.snapshot_id, max(expired, 0), rel)
