from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cleartrace.errors import HomeError
from cleartrace.paths import Paths, ensure_private_dirs


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_home_comes_from_cleartrace_home(private_home: Paths, tmp_path: Path) -> None:
    assert private_home.home == tmp_path / "home"
    assert private_home.db == tmp_path / "home" / "store.db"


def test_home_defaults_to_the_platform_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLEARTRACE_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", "/srv/data")
    assert Paths.from_env().home == Path("/srv/data/cleartrace")


def test_new_home_is_created_0700(private_home: Paths) -> None:
    ensure_private_dirs(private_home)
    assert _mode(private_home.home) == 0o700
    assert _mode(private_home.keys_dir) == 0o700


def test_loose_existing_home_and_files_are_tightened(
    private_home: Paths, caplog: pytest.LogCaptureFixture
) -> None:
    private_home.home.mkdir(mode=0o755)
    os.chmod(private_home.home, 0o755)
    stray = private_home.home / "store.db"
    stray.write_bytes(b"")
    os.chmod(stray, 0o644)
    ensure_private_dirs(private_home)
    assert _mode(private_home.home) == 0o700
    assert _mode(stray) == 0o600
    assert "tightened to 0700" in caplog.text
    assert f"{stray} was readable by group or others" in caplog.text


def test_symlinked_home_is_refused(private_home: Paths, tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir()
    private_home.home.symlink_to(real)
    with pytest.raises(HomeError, match="symbolic link"):
        ensure_private_dirs(private_home)


def test_socket_path_fits_af_unix(private_home: Paths) -> None:
    assert len(str(private_home.socket).encode()) < 108
