"""Shared fixtures: every test gets its own private home and runtime dir."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from cleartrace.paths import Paths
from orgkit import Org, make_org

# The machines are shared and noisy: no per-example deadline, and the first
# draw of text strategies (building Unicode tables) may be slow.
settings.register_profile("cleartrace", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("cleartrace")

# Qt must never look for a display in tests; tray tests start their own X server.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Paths]:
    """CLEARTRACE_HOME and XDG_RUNTIME_DIR in fresh 0700 directories.

    The runtime dir lives under a short /tmp path so the control socket's path
    stays within AF_UNIX's 108-byte limit whatever pytest's tmp_path is.
    """
    home = tmp_path / "home"
    with tempfile.TemporaryDirectory(prefix="ct-run-") as runtime:
        os.chmod(runtime, 0o700)
        monkeypatch.setenv("CLEARTRACE_HOME", str(home))
        monkeypatch.setenv("XDG_RUNTIME_DIR", runtime)
        monkeypatch.setenv("CLEARTRACE_KEYSTORE", "file")
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        monkeypatch.delenv("XDG_SESSION_TYPE", raising=False)
        yield Paths.from_env()


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    """An organisation: keys, a signed policy and its collector running on 127.0.0.1."""
    made = make_org(tmp_path / "org")
    made.collector.start()
    yield made
    made.collector.stop()
