"""A canary string and the check that it appears nowhere in the store's files.

Typed into a session or used as a window title, it must be found in no
encoding in store.db, its WAL or its shared memory: not while recording, not
after closing, not after a delete or a redaction.
"""

from __future__ import annotations

from pathlib import Path

from cleartrace.paths import Paths

CANARY = "qzcanaryxv"


def canary_forms() -> list[bytes]:
    """CANARY as the encodings a careless write would leave it in."""
    return [CANARY.encode(enc) for enc in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le")]


def store_files(paths: Paths) -> dict[Path, bytes]:
    """The bytes of store.db and its -wal and -shm files, by path."""
    return {p: p.read_bytes() for p in paths.home.glob("store.db*")}


def assert_absent(needles: list[bytes], paths: Paths) -> None:
    """None of `needles` is in any of the store's files (which must exist)."""
    files = store_files(paths)
    assert files, "the store files exist"
    for path, data in files.items():
        for needle in needles:
            assert needle not in data, f"found in {path.name}"
