from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cleartrace.errors import HomeError
from cleartrace.paths import Paths, check_home, ensure_private_dirs
from tests.support.cli import ct


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


def _env_without_runtime_dir(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env["TMPDIR"] = str(tmp)  # where a predictable fallback would have been
    return env


@pytest.mark.parametrize("planted", ["foreign_owner", "symlink"])
def test_runtime_dir_planted_by_another_user_blocks_nothing(
    private_home: Paths, tmp_path: Path, planted: str
) -> None:
    shared_tmp = tmp_path / "shared-tmp"
    shared_tmp.mkdir(mode=0o1777)
    predictable = shared_tmp / f"cleartrace-{os.getuid()}"
    if planted == "foreign_owner":
        predictable.mkdir(mode=0o777)
        os.chmod(predictable, 0o777)
        os.chown(predictable, 65534, 65534)
    else:
        target = tmp_path / "attacker"
        target.mkdir(mode=0o777)
        os.chown(target, 65534, 65534)
        predictable.symlink_to(target)
    env = _env_without_runtime_dir(shared_tmp)
    done = ct("consent", "give", "--category", "keys", env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert ct("pause", env=env, check=False).stderr.startswith("cleartrace: no recorder is running")
    runtime = Paths.from_env().home / "run"
    assert runtime.is_dir()
    assert not runtime.is_symlink()
    assert _mode(runtime) == 0o700
    assert runtime.stat().st_uid == os.getuid()
    if planted == "symlink":
        assert list((tmp_path / "attacker").iterdir()) == []


def test_without_xdg_runtime_dir_the_socket_lives_in_the_home(
    private_home: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    paths = Paths.from_env()
    assert paths.runtime == paths.home / "run"
    ensure_private_dirs(paths)
    assert _mode(paths.runtime) == 0o700
    assert paths.socket.parent == paths.runtime


def test_foreign_xdg_runtime_dir_is_refused_naming_it(
    private_home: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    foreign = tmp_path / "foreign-run"
    foreign.mkdir(mode=0o700)
    os.chown(foreign, 65534, 65534)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(foreign))
    with pytest.raises(HomeError, match="XDG_RUNTIME_DIR"):
        ensure_private_dirs(Paths.from_env())


@pytest.mark.parametrize("through", ["home_is_link", "parent_is_link"])
def test_home_through_a_symlink_into_another_users_directory_is_refused(
    tmp_path: Path, through: str
) -> None:
    theirs = tmp_path / "theirs"
    (theirs / "dir").mkdir(parents=True)
    os.chown(theirs, 65534, 65534)
    os.chown(theirs / "dir", 65534, 65534)
    link = tmp_path / "link"
    link.symlink_to(theirs / "dir")
    home = link if through == "home_is_link" else link / "home"
    env = {**os.environ, "CLEARTRACE_HOME": str(home)}
    for args in (("consent", "give", "--category", "keys"), ("status",)):
        done = ct(*args, env=env, check=False)
        assert done.returncode == 2, done
        (line,) = done.stderr.splitlines()
        assert "unexpected" not in line
        assert f"through the symbolic link {link}" in line, line
        assert "another user (uid 65534)" in line, line
    assert list((theirs / "dir").iterdir()) == []


def test_home_through_a_link_into_a_directory_under_another_users_is_refused(
    tmp_path: Path,
) -> None:
    """/base/link -> /evil/mine: every directory named on the way is ours,
    but the link's target lies in one that another user owns and may rename."""
    (tmp_path / "evil" / "mine").mkdir(parents=True)
    os.chown(tmp_path / "evil", 65534, 65534)
    os.chmod(tmp_path / "evil", 0o777)
    (tmp_path / "base").mkdir()
    link = tmp_path / "base" / "link"
    link.symlink_to(tmp_path / "evil" / "mine")
    env = {**os.environ, "CLEARTRACE_HOME": str(link / "home")}
    done = ct("consent", "give", "--category", "keys", env=env, check=False)
    assert done.returncode == 2, done
    (line,) = done.stderr.splitlines()
    assert f"through the symbolic link {link}" in line, line
    assert str(tmp_path / "evil") in line, line
    assert list((tmp_path / "evil" / "mine").iterdir()) == []


def test_home_in_a_directory_anyone_may_write_without_the_sticky_bit_is_refused(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)  # root's own, but anyone may rename what is in it
    with pytest.raises(HomeError, match="no sticky bit"):
        check_home(shared / "home")
    os.chmod(shared, 0o1777)  # like /tmp: nobody may rename another's entries
    check_home(shared / "home")
