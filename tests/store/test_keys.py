from __future__ import annotations

import json
import os
import stat
import time
from typing import Any

import keyring
import keyring.backends.fail
import keyring.errors
import pytest
from keyring.backend import KeyringBackend

from cleartrace.errors import KeyStorageError
from cleartrace.paths import Paths, ensure_private_dirs
from cleartrace.store import keychain
from cleartrace.store.keys import describe_keystore, device_fingerprint, load_keys


class DictKeyring(KeyringBackend):
    """A real keyring backend that keeps its secrets in memory."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.items.pop((service, username), None)


class HangingKeyring(DictKeyring):
    def set_password(self, service: str, username: str, password: str) -> None:
        time.sleep(30)


@pytest.fixture
def restore_keyring() -> Any:
    before = keyring.get_keyring()
    yield
    keyring.set_keyring(before)


def test_file_keys_are_created_0600_and_load_back(private_home: Paths) -> None:
    ensure_private_dirs(private_home)
    created = load_keys(private_home, create=True)
    loaded = load_keys(private_home, create=False)
    assert created.master == loaded.master
    assert device_fingerprint(created.device.public_key()) == device_fingerprint(
        loaded.device.public_key()
    )
    assert loaded.backend == "file"
    for name in ("master.key", "device.key"):
        assert stat.S_IMODE((private_home.keys_dir / name).stat().st_mode) == 0o600
    assert describe_keystore(private_home) == {"backend": "file", "location": loaded.location}
    assert "master.key" in loaded.location
    marker = private_home.keystore_marker.read_text()
    assert created.master.hex() not in marker


def test_nothing_set_up_is_an_error_without_create(private_home: Paths) -> None:
    ensure_private_dirs(private_home)
    with pytest.raises(KeyStorageError, match="not set up"):
        load_keys(private_home, create=False)


def test_group_readable_key_file_is_refused(private_home: Paths) -> None:
    ensure_private_dirs(private_home)
    load_keys(private_home, create=True)
    path = private_home.keys_dir / "master.key"
    os.chmod(path, 0o644)
    with pytest.raises(KeyStorageError, match=f"chmod 600 {path}"):
        load_keys(private_home, create=False)


def test_symlinked_key_file_is_refused(private_home: Paths) -> None:
    ensure_private_dirs(private_home)
    load_keys(private_home, create=True)
    path = private_home.keys_dir / "device.key"
    target = private_home.home / "elsewhere.key"
    path.rename(target)
    path.symlink_to(target)
    with pytest.raises(KeyStorageError, match="symbolic link"):
        load_keys(private_home, create=False)


def test_missing_key_names_where_it_was_expected_and_is_never_recreated(
    private_home: Paths,
) -> None:
    ensure_private_dirs(private_home)
    load_keys(private_home, create=True)
    path = private_home.keys_dir / "master.key"
    path.unlink()
    for create in (False, True):
        with pytest.raises(KeyStorageError, match=str(path)):
            load_keys(private_home, create=create)
    assert not path.exists()


def test_working_keyring_is_used_and_entries_are_per_home(
    private_home: Paths, monkeypatch: pytest.MonkeyPatch, restore_keyring: None
) -> None:
    monkeypatch.delenv("CLEARTRACE_KEYSTORE")
    backend = DictKeyring()
    keyring.set_keyring(backend)
    ensure_private_dirs(private_home)
    created = load_keys(private_home, create=True)
    assert created.backend == "keyring"
    assert "OS keychain" in created.location
    assert not (private_home.keys_dir / "master.key").exists()
    assert len(backend.items) == 2  # master and device; the probe value was deleted
    assert load_keys(private_home, create=False).master == created.master
    backend.items.clear()
    with pytest.raises(KeyStorageError, match="OS keychain"):
        load_keys(private_home, create=False)


def test_hanging_keyring_falls_back_to_files_in_time(
    private_home: Paths, monkeypatch: pytest.MonkeyPatch, restore_keyring: None
) -> None:
    monkeypatch.delenv("CLEARTRACE_KEYSTORE")
    monkeypatch.setattr(keychain, "PROBE_TIMEOUT", 0.3)
    keyring.set_keyring(HangingKeyring())
    ensure_private_dirs(private_home)
    start = time.monotonic()
    created = load_keys(private_home, create=True)
    assert time.monotonic() - start < 2
    assert created.backend == "file"
    assert json.loads(private_home.keystore_marker.read_text())["backend"] == "file"


class FailingKeyring(DictKeyring):
    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.PasswordSetError("locked")


class ForgetfulKeyring(DictKeyring):
    def set_password(self, service: str, username: str, password: str) -> None:
        pass  # accepts and stores nothing, as some headless backends do


@pytest.mark.parametrize(
    "backend",
    [FailingKeyring(), ForgetfulKeyring(), keyring.backends.fail.Keyring()],
    ids=["raising", "forgetful", "fail backend"],
)
def test_unusable_keyrings_fall_back_to_files(
    private_home: Paths,
    monkeypatch: pytest.MonkeyPatch,
    restore_keyring: None,
    backend: KeyringBackend,
) -> None:
    monkeypatch.delenv("CLEARTRACE_KEYSTORE")
    keyring.set_keyring(backend)
    ensure_private_dirs(private_home)
    assert load_keys(private_home, create=True).backend == "file"
    assert (private_home.keys_dir / "master.key").exists()


def test_forcing_keyring_without_a_working_one_is_an_error(
    private_home: Paths, monkeypatch: pytest.MonkeyPatch, restore_keyring: None
) -> None:
    monkeypatch.setenv("CLEARTRACE_KEYSTORE", "keyring")
    keyring.set_keyring(FailingKeyring())
    ensure_private_dirs(private_home)
    with pytest.raises(KeyStorageError, match="CLEARTRACE_KEYSTORE=keyring"):
        load_keys(private_home, create=True)
    assert not private_home.keystore_marker.exists()


def test_keychain_that_hangs_at_load_is_reported_not_replaced(
    private_home: Paths, monkeypatch: pytest.MonkeyPatch, restore_keyring: None
) -> None:
    monkeypatch.delenv("CLEARTRACE_KEYSTORE")
    backend = DictKeyring()
    keyring.set_keyring(backend)
    ensure_private_dirs(private_home)
    load_keys(private_home, create=True)

    class Locked(DictKeyring):
        def get_password(self, service: str, username: str) -> str | None:
            time.sleep(30)
            return None

    keyring.set_keyring(Locked())
    monkeypatch.setattr(keychain, "PROBE_TIMEOUT", 0.2)
    start = time.monotonic()
    with pytest.raises(KeyStorageError, match=r"did not answer within 0\.2 s; unlock"):
        load_keys(private_home, create=True)
    assert time.monotonic() - start < 2


def test_keyring_entries_are_separate_per_home(
    private_home: Paths, monkeypatch: pytest.MonkeyPatch, restore_keyring: None, tmp_path: Any
) -> None:
    monkeypatch.delenv("CLEARTRACE_KEYSTORE")
    backend = DictKeyring()
    keyring.set_keyring(backend)
    other = Paths(home=tmp_path / "other-home", runtime=private_home.runtime)
    for paths in (private_home, other):
        ensure_private_dirs(paths)
    a, b = load_keys(private_home, create=True), load_keys(other, create=True)
    assert a.master != b.master
    assert len(backend.items) == 4
    assert all(user.split(":")[0] in ("master", "device") for _svc, user in backend.items)


def test_keys_never_appear_in_repr(private_home: Paths) -> None:
    ensure_private_dirs(private_home)
    keys = load_keys(private_home, create=True)
    text = repr(keys)
    assert keys.master.hex() not in text
    assert repr(keys.master) not in text
    assert "location=" in text


def test_marker_is_private_and_a_store_without_it_gets_no_new_keys(private_home: Paths) -> None:
    ensure_private_dirs(private_home)
    load_keys(private_home, create=True)
    assert stat.S_IMODE(private_home.keystore_marker.stat().st_mode) == 0o600
    private_home.db.write_bytes(b"")  # a store exists ...
    private_home.keystore_marker.unlink()  # ... but the record of its keys is lost
    with pytest.raises(KeyStorageError, match="restore it rather than creating new keys"):
        load_keys(private_home, create=True)


def test_damaged_key_file_is_refused(private_home: Paths) -> None:
    ensure_private_dirs(private_home)
    load_keys(private_home, create=True)
    path = private_home.keys_dir / "device.key"
    path.write_bytes(b"short")
    with pytest.raises(KeyStorageError, match=f"{path} is damaged"):
        load_keys(private_home, create=False)


@pytest.mark.parametrize("name", ["master.key", "device.key"])
def test_key_file_owned_by_another_user_is_refused_naming_the_fix(
    private_home: Paths, name: str
) -> None:
    ensure_private_dirs(private_home)
    load_keys(private_home, create=True)
    path = private_home.keys_dir / name
    os.chown(path, 65534, 65534)  # 0600 still, but someone else's
    with pytest.raises(KeyStorageError) as caught:
        load_keys(private_home, create=False)
    message = str(caught.value)
    assert f"{path} belongs to another user (uid 65534)" in message
    assert f"chown {os.getuid()} {path}" in message


def test_master_key_rotation_in_the_keychain_replaces_the_entry_and_leaves_no_staged_one(
    private_home: Paths, monkeypatch: pytest.MonkeyPatch, restore_keyring: None
) -> None:
    from cleartrace.home import Home
    from cleartrace.store.rotation import rotate_master_key
    from cleartrace.store.staged_master import stage_master

    monkeypatch.delenv("CLEARTRACE_KEYSTORE")
    backend = DictKeyring()
    keyring.set_keyring(backend)
    home = Home.open(private_home, create=True)
    try:
        handle = home.store.begin_session(time.time_ns(), 0)
        home.store.append_chunk(handle, [(5, 1, 97, 0, 0, 0, None)])
        home.store.end_session(handle, time.time_ns())
        before = dict(backend.items)
        rotated, counts = rotate_master_key(private_home, home.keys)
    finally:
        home.close()
    assert counts["session key"] == 1
    changed = {user for (_s, user), v in backend.items.items() if before.get((_s, user)) != v}
    assert [u.split(":")[0] for u in changed] == ["master"]
    assert not any(user.startswith("master-next") for _s, user in backend.items)
    # a rotation staged and then abandoned before its commit is undone on open
    stage_master(private_home, rotated, b"\x01" * 32)
    again = Home.open(private_home, create=False)
    try:
        assert again.keys.master == rotated.master
        assert len(again.store.read_events(handle.id)) == 1
    finally:
        again.close()
    assert not any(user.startswith("master-next") for _s, user in backend.items)
