"""Compacting a long session in a child process.

Compaction decodes and re-encodes hundreds of thousands of events in single
C-level passes (the codec's comprehensions, `map`, `bytes`): tens of
milliseconds each during which the interpreter is not released, so every
hook callback of the recorder would wait that long. In a child process it
holds no lock of the recorder's, and the memory it takes goes back to the
system when it ends. A session this small or smaller is compacted in place:
its passes are short, and a child's start (a few hundred ms of CPU) would
cost more than the compaction.

The child reads the master key and the session key from its stdin (never
from its arguments, which other processes can read), opens its own
connection to the store, and runs `Compactor._compact`: one transaction,
so a child killed half-way leaves the session as it was (recovered at the
next open). An error comes back as one JSON line on stdout, re-raised here
as the same `StoreError`; its message names objects, never content.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.errors import DiskFull, StoreCorrupt, StoreError, WrongKey
from cleartrace.paths import Paths

__all__ = ["IN_PLACE_EVENTS", "compact_in_child"]

#: Sessions of at most this many events are compacted in the recorder's process.
IN_PLACE_EVENTS = 32_768
_KEY = 32
_ERRORS: dict[str, type[StoreError]] = {
    e.__name__: e for e in (StoreError, DiskFull, StoreCorrupt, WrongKey)
}
_TIMEOUT_S = 600.0  # a 40-hour session takes seconds; this is a hung child


def compact_in_child(
    paths: Paths, master: bytes, session_id: str, session_key: bytes, seal_limit: int
) -> None:
    """Compact session `session_id` in a child process; returns once it has.

    Raises:
        DiskFull, StoreCorrupt, WrongKey, StoreError: as compacting in place
            would, or the child could not run (the session is left as it was).
    """
    args = [sys.executable, "-m", __name__, str(paths.home), str(paths.runtime), session_id]
    args.append(str(seal_limit))
    try:
        done = subprocess.run(
            args, input=master + session_key, capture_output=True, timeout=_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StoreError(
            f"cannot compact session {session_id[:12]} ({type(exc).__name__}); it stays as "
            "recorded and is compacted at the next start"
        ) from None
    if done.returncode == 0:
        return
    try:
        said = json.loads(done.stdout.decode().strip().splitlines()[-1])
        error = _ERRORS.get(said["error"], StoreError)(str(said["message"]))
    except (ValueError, IndexError, KeyError, TypeError):
        error = StoreError(
            f"compacting session {session_id[:12]} failed (exit status {done.returncode}); "
            "it stays as recorded and is compacted at the next start"
        )
    raise error


def _main(argv: list[str]) -> int:
    from cleartrace.store.compaction import Compactor
    from cleartrace.store.db import connect
    from cleartrace.store.keys import Keys

    home, runtime, session_id, seal_limit = argv
    secret = sys.stdin.buffer.read()
    if len(secret) != 2 * _KEY:
        print(json.dumps({"error": "StoreError", "message": "compaction got no keys"}))
        return 2
    # The device key signs ledger records, which compacting never writes: a
    # throwaway one stands in for it, and the real one never leaves the parent.
    keys = Keys(secret[:_KEY], Ed25519PrivateKey.generate(), "parent", "the recorder")
    paths = Paths(home=Path(home), runtime=Path(runtime))
    try:
        conn = connect(paths.db)
        try:
            Compactor(paths, keys, conn, int(seal_limit))._compact(session_id, secret[_KEY:])
        finally:
            conn.close()
    except StoreError as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
