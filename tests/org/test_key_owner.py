"""The organisation's and the collector's private key files must be the reader's own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cleartrace.errors import KeyStorageError
from cleartrace.org import witness
from cleartrace.org.keys import BUNDLE_KEY, SIGN_KEY, generate, load_bundle_keys, load_private


@pytest.mark.parametrize("name", [BUNDLE_KEY, SIGN_KEY])
def test_org_private_key_owned_by_another_user_is_refused(tmp_path: Path, name: str) -> None:
    keys = tmp_path / "keys"
    generate(keys)
    os.chown(keys / name, 65534, 65534)
    with pytest.raises(KeyStorageError, match=f"{keys / name} belongs to another user"):
        load_private(keys)
    if name == BUNDLE_KEY:
        with pytest.raises(KeyStorageError, match=f"chown {os.getuid()} {keys / name}"):
            load_bundle_keys(keys)


def test_witness_key_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    witness.load_or_create(tmp_path)
    path = tmp_path / witness.WITNESS_KEY
    os.chown(path, 65534, 65534)
    with pytest.raises(KeyStorageError, match=f"{path} belongs to another user"):
        witness.load_or_create(tmp_path)


def test_symlinked_org_key_is_refused(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    generate(keys)
    moved = tmp_path / "elsewhere.key"
    (keys / SIGN_KEY).rename(moved)
    (keys / SIGN_KEY).symlink_to(moved)
    with pytest.raises(KeyStorageError, match="symbolic link"):
        load_private(keys)
