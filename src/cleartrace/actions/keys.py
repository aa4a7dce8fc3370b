"""Replacing the master key (`cleartrace keys rotate`)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from cleartrace.control import request
from cleartrace.errors import RecorderError, RecorderNotRunning, UsageError
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.store.rotation import rotate_master_key

__all__ = ["Rotation", "rotate"]


@dataclass(frozen=True, slots=True)
class Rotation:
    """Where the new master key lives, how many session keys were rewrapped,
    and whether another reader kept old pages in the WAL file for now."""

    location: str
    session_keys: int
    old_pages_remain: bool


def _refuse_running_recorder(paths: Paths) -> None:
    """A running recorder holds the old master key and would wrap new session
    keys with it; it must be stopped first (a session it starts afterwards is
    refused by the store anyway)."""
    if not paths.socket.exists():
        return
    try:
        request(paths.socket, "ping", timeout=2.0)
    except RecorderNotRunning:
        return
    except RecorderError:
        pass  # something holds the socket and answered badly or late: still running
    raise UsageError(
        "a recorder is running for this home; stop it (quit the tray, or end "
        "'cleartrace record'), then rotate the key"
    )


def rotate(paths: Paths) -> Rotation:
    """A new master key; every key the old one wrapped is rewrapped in one step
    a crash cannot break, and ledgered as `key.rotated`.

    Raises:
        UsageError: a recorder is running for this home.
        KeyStorageError, StoreError: see `store.rotation.rotate_master_key`.
    """
    _refuse_running_recorder(paths)
    home = Home.open(paths, create=False)
    try:

        def record(conn: sqlite3.Connection) -> None:
            home.ledger.append_in(conn, "key.rotated")

        keys, counts = rotate_master_key(home.paths, home.keys, record=record)
        remain = home.store.old_pages_remain()
    finally:
        home.close()
    return Rotation(keys.location, counts.get("session key", 0), remain)
