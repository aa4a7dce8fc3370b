"""What is checked of an Iceberg table before ClearTrace writes or purges it.

The purge deletes files, and an erasure is only as good as the purge: so a
table is refused, before anything is changed, when

- its `location` (read from its metadata file, which anyone who can write
  the warehouse can rewrite) does not resolve inside DATASET/warehouse;
- a directory from the dataset down to its data/ and metadata/, or inside
  them, is a symbolic link (rows would be written elsewhere, and a purge
  that does not follow links would leave them there);
- a ref other than `main` (a tag or branch another engine made) pins a
  snapshot: the files of that snapshot cannot be removed, so an erased row
  could stay in them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from cleartrace.errors import UsageError

if TYPE_CHECKING:
    from pyiceberg.table import Table

__all__ = ["check_table", "inside", "local_path", "public_uri"]


def public_uri(uri: str) -> str:
    """`uri` without its password, as the manifest records it and errors show it.

    The password is left out altogether (not shown as ***): the catalog is
    the same whether its password is in the URI or in libpq's password file
    (PGPASSFILE, ~/.pgpass), so a dataset built with one form runs with the
    other, and an older manifest's `user:***@` names the same catalog."""
    from sqlalchemy.engine import URL, make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(uri)
    except ArgumentError:
        return "(not a SQLAlchemy URI)"
    bare = URL.create(
        url.drivername, url.username, None, url.host, url.port, url.database, url.query
    )
    return bare.render_as_string(hide_password=False)


def local_path(uri: str) -> Path:
    """The local path of a file:// URI (or a plain path)."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        raise UsageError(
            f"the table's files are at {parsed.scheme}://, and ClearTrace removes unreferenced "
            "files on a local warehouse only; keep the warehouse in the dataset directory"
        )
    return Path(unquote(parsed.path))


def inside(path: Path, warehouse: Path) -> bool:
    """Whether `path`, its links and `..` resolved, is in `warehouse` (resolved)."""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(warehouse))


def _links(root: Path, location: Path) -> list[Path]:
    """The symbolic links among the directories from `root` down to the table's
    data/ and metadata/, and among the directories inside those two."""
    found = []
    rel = location.relative_to(root)
    for part in ("data", "metadata"):
        here = root
        for name in (*rel.parts, part):
            here = here / name
            if here.is_symlink():
                found.append(here)
                break
        else:
            for directory, dirs, _ in os.walk(here, followlinks=False):
                found += [Path(directory) / d for d in dirs if (Path(directory) / d).is_symlink()]
    return sorted(set(found))


def check_table(table: Table, name: str, root: Path, warehouse: Path) -> None:
    """Refuse table `name` of the dataset at `root` unless it is safe to write and purge.

    Raises:
        UsageError: its location is outside `warehouse`, a directory of it is a
            link, or a ref other than main pins a snapshot.
    """
    root = Path(os.path.abspath(root))
    location = Path(os.path.abspath(local_path(table.location())))
    links = _links(root, location) if location.is_relative_to(root) else []
    if links:
        raise UsageError(
            f"{links[0]} is a symbolic link: the table cleartrace.{name} of the dataset "
            f"{root} is written and purged only through real directories; nothing was written "
            "or removed. Replace the link with the directory it points to, then run again"
        )
    if not location.is_relative_to(root) or not inside(location, warehouse):
        raise UsageError(
            f"the Iceberg table cleartrace.{name} says its files are at {location}, outside "
            f"{warehouse}: its metadata was changed or it is another dataset's table; nothing "
            "was written or removed. Restore the table's metadata, or give the --catalog the "
            f"dataset {root} was built with"
        )
    refs = sorted(r for r in table.metadata.refs if r != "main")
    if refs:
        kind = table.metadata.refs[refs[0]].snapshot_ref_type.value
        raise UsageError(
            f"the Iceberg table cleartrace.{name} has the {kind} '{refs[0]}' (made by another "
            "engine): while a ref pins an old snapshot, erased data cannot be guaranteed gone "
            "from its files, so nothing was changed. Drop it, e.g. in Spark: ALTER TABLE "
            f"cleartrace.{name} DROP {kind.upper()} `{refs[0]}` (pyiceberg: "
            f"manage_snapshots().remove_{kind}('{refs[0]}')), then run again"
        )
