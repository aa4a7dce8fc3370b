"""What every command shares: output helpers and opening the home."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cleartrace.home import Home
from cleartrace.paths import Paths

__all__ = [
    "Add",
    "Args",
    "emit_json",
    "every_signature_flag",
    "fmt_time",
    "heads_from_arg",
    "heads_source",
    "json_flag",
    "open_home",
]

Args = argparse.Namespace
#: How a commands module adds a subcommand: add(subparsers, name, help, func) (cli._add).
Add = Callable[[Any, str, str, Any], argparse.ArgumentParser]


def json_flag(p: argparse.ArgumentParser, what: str = "JSON") -> None:
    p.add_argument("--json", action="store_true", help=f"print {what} to stdout")


def store_args(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    """`--from` (a collector's store: directory or s3://) and `--s3-endpoint`,
    as every officer command that reads the store takes them."""
    p.add_argument(
        "--from",
        dest="source",
        required=required,
        metavar="DIR|s3://BUCKET/PREFIX",
        help="the collector's store: its directory, or the S3 location it writes to",
    )
    p.add_argument(
        "--s3-endpoint",
        metavar="URL",
        help="S3-compatible server (MinIO, Ceph); default: AWS_ENDPOINT_URL or AWS itself",
    )


def catalog_arg(p: argparse.ArgumentParser) -> None:
    """`--catalog`, the SQL catalog of a dataset kept as Iceberg tables, for
    ingest and the subject requests alike."""
    p.add_argument(
        "--catalog",
        metavar="URI",
        help="with Iceberg tables: the SQL catalog as a SQLAlchemy URI, such as "
        "postgresql+psycopg://user@host/db, its password best in libpq's PGPASSFILE, not in "
        "the URI (default: DATASET/catalog.db, SQLite)",
    )


def every_signature_flag(p: argparse.ArgumentParser) -> None:
    """--every-signature, one definition for `audit verify` and `org audit`."""
    p.add_argument(
        "--every-signature",
        action="store_true",
        help="check every record's signature, not only the last of each linked run (which "
        "vouches for those before it: docs/adr/0006-one-signature-per-run.md); slower",
    )


def heads_from_arg(p: argparse.ArgumentParser) -> None:
    """`--heads-from DATA|URL`, as ingest and the audit take it: the collector's
    registry as the authority on witnessed heads, the only evidence against a
    store rolled back as a whole (bundles and head files put back together).
    A fleet's state is given as itself, never found through DATA/state.json."""
    p.add_argument(
        "--heads-from",
        metavar="DATA|URL",
        help="the collector's data directory, or a fleet's state postgresql://USER@HOST/DB "
        "(password from PGPASSWORD or ~/.pgpass), read only: its registry is the authority "
        "on witnessed heads, so a store rolled back to older heads (bundles and head files "
        "together) is found, and a device the collector witnessed whose bundles and head "
        "are all gone is named",
    )


def heads_source(value: str | None) -> Path | str | None:
    """`--heads-from` as given: a fleet's PostgreSQL state (without a password, which
    the process list would show), or the collector's data directory.

    Raises:
        UsageError: the URL holds a password.
    """
    from cleartrace.org.state import is_shared, refuse_password  # org commands only

    if value is None:
        return None
    if is_shared(value):
        return refuse_password(value, "--heads-from")
    return Path(value)


def emit_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def fmt_time(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@contextmanager
def open_home(*, create: bool = False) -> Iterator[Home]:
    home = Home.open(Paths.from_env(), create=create)
    try:
        yield home
    finally:
        home.close()
