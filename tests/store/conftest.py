"""A fresh store with file-backed keys in the test's private home."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cleartrace.paths import Paths, ensure_private_dirs
from cleartrace.store.keys import Keys, load_keys
from cleartrace.store.sessions import Store


@pytest.fixture
def keys(private_home: Paths) -> Keys:
    ensure_private_dirs(private_home)
    return load_keys(private_home, create=True)


@pytest.fixture
def store(private_home: Paths, keys: Keys) -> Iterator[Store]:
    s = Store.open(private_home, keys)
    yield s
    s.close()
