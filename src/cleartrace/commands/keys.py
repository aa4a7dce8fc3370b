"""`cleartrace keys rotate`: a new master key; every key it wrapped is rewrapped."""

from __future__ import annotations

import sqlite3
import sys
from typing import Any

from cleartrace.commands.common import Add, Args, open_home
from cleartrace.control import request
from cleartrace.errors import RecorderError, RecorderNotRunning, UsageError
from cleartrace.paths import Paths
from cleartrace.store.rotation import rotate_master_key

__all__ = ["keys_rotate", "register"]


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


def keys_rotate(args: Args) -> None:
    paths = Paths.from_env()
    _refuse_running_recorder(paths)
    with open_home() as home:

        def record(conn: sqlite3.Connection) -> None:
            home.ledger.append_in(conn, "key.rotated")

        keys, counts = rotate_master_key(home.paths, home.keys, record=record)
        remain = home.store.old_pages_remain()
    sessions = counts.get("session key", 0)
    if remain:
        after = (
            f"another program was reading {home.paths.db}, so its -wal file still holds "
            "the keys as the old master key wrapped them until that program lets go "
            "(the next start of ClearTrace empties it); until then a copy of the old "
            "key still opens them"
        )
    else:
        after = "a copy of the old key opens nothing now"
    print(
        f"the master key was replaced ({keys.location}) and {sessions} session "
        f"key{'s' if sessions != 1 else ''} rewrapped; {after}",
        file=sys.stderr,
    )


def register(sub: Any, add: Add) -> None:
    """Add `keys rotate` to the top-level commands."""
    keys = add(sub, "keys", "manage this home's keys", None)
    ksub = keys.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=type(keys)
    )
    add(
        ksub,
        "rotate",
        "replace the master key by a new one and rewrap every session key with it, "
        "in one step a crash cannot break (stop the recorder first)",
        keys_rotate,
    )
