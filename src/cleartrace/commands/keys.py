"""`cleartrace keys rotate`: a new master key; every key it wrapped is rewrapped."""

from __future__ import annotations

import sys
from typing import Any

from cleartrace.actions import keys
from cleartrace.commands.common import Add, Args
from cleartrace.paths import Paths

__all__ = ["keys_rotate", "register"]


def keys_rotate(args: Args) -> None:
    paths = Paths.from_env()
    done = keys.rotate(paths)
    if done.old_pages_remain:
        after = (
            f"another program was reading {paths.db}, so its -wal file still holds "
            "the keys as the old master key wrapped them until that program lets go "
            "(the next start of ClearTrace empties it); until then a copy of the old "
            "key still opens them"
        )
    else:
        after = "a copy of the old key opens nothing now"
    n = done.session_keys
    print(
        f"the master key was replaced ({done.location}) and {n} session "
        f"key{'s' if n != 1 else ''} rewrapped; {after}",
        file=sys.stderr,
    )


def register(sub: Any, add: Add) -> None:
    """Add `keys rotate` to the top-level commands."""
    parser = add(sub, "keys", "manage this home's keys", None)
    ksub = parser.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=type(parser)
    )
    add(
        ksub,
        "rotate",
        "replace the master key by a new one and rewrap every session key with it, "
        "in one step a crash cannot break (stop the recorder first)",
        keys_rotate,
    )
