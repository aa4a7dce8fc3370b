"""The Makefile's venv stamps: `make run` installs the runtime only, `make test`
the dev extra, and either order works on a fresh machine (a dry run of make
in a copy of the Makefile and pyproject.toml)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def dry(repo: Path, target: str) -> str:
    """The commands `make TARGET` would run for the venv (sysdeps left out)."""
    # Run as a make of its own, not as a sub-make of `make test` (which would
    # print "make[1]: Entering directory" and pass its flags down).
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    done = subprocess.run(
        ["make", "-n", target], cwd=repo, capture_output=True, text=True, check=True, env=env
    )
    return done.stdout


def installs(commands: str) -> list[str]:
    return [line.split()[-1] for line in commands.splitlines() if "pip install -q -e" in line]


def really(repo: Path, target: str) -> None:
    """What the venv recipes leave behind, without installing anything: the stamps."""
    venv = repo / ".venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    (venv / "bin" / "python").touch()
    for line in dry(repo, target).splitlines():
        if line.startswith("touch "):
            for name in line.split()[1:]:
                (repo / name).touch()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_run_installs_the_runtime_only_and_test_adds_the_dev_extra(repo: Path) -> None:
    assert installs(dry(repo, "venv-run")) == ["."]
    really(repo, "venv-run")
    assert dry(repo, "venv-run").strip().startswith("make: Nothing to be done")
    assert installs(dry(repo, "venv")) == ["'.[dev]'"]


def test_test_then_run_installs_nothing_more(repo: Path) -> None:
    really(repo, "venv")
    assert installs(dry(repo, "venv-run")) == []
    assert installs(dry(repo, "venv")) == []


def test_a_changed_pyproject_installs_again(repo: Path) -> None:
    really(repo, "venv")
    later = time.time() + 10
    os.utime(repo / "pyproject.toml", (later, later))
    assert installs(dry(repo, "venv-run")) == ["."]
    assert installs(dry(repo, "venv")) == ["'.[dev]'"]


def test_make_run_uses_the_runtime_venv() -> None:
    rule = next(
        line for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith("run:")
    )
    assert rule.split() == ["run:", "sysdeps", "venv-run"]


def test_run_installs_no_test_packages_and_test_installs_them(repo: Path) -> None:
    """A person who runs the app gets no PostgreSQL server, browser or X server
    for tests; `make test` on a fresh machine gets them all."""
    run, test = dry(repo, "run"), dry(repo, "test")
    for package in ("postgresql", "chromium", "xvfb", "xdotool"):
        assert package not in run
        assert package in test
    assert "dbus" in run
