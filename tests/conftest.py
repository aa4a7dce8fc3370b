"""Shared fixtures: every test gets its own private home and runtime dir.

The fixtures of tests/support are registered here (`pytest_plugins`), so a
test anywhere under tests/ can ask for `xserver`, `xdo`, `start_recorder`...
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from cleartrace.paths import Paths
from tests.support.orgkit import Org, aws_env, make_org

pytest_plugins = [
    "tests.support.xserver",
    "tests.support.recording",
    "tests.support.session_bus",
]

# The machines are shared and noisy: no per-example deadline, and the first
# draw of text strategies (building Unicode tables) may be slow.
settings.register_profile("cleartrace", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("cleartrace")

# Qt must never look for a display in tests; tray tests start their own X server.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a real X server `xserver`, wherever it lives.

    `-m "not xserver"` then leaves out exactly the tests that start Xvfb,
    without each file having to remember the marker.
    """
    for item in items:
        if "xserver" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xserver)


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


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible HTTP server (moto) on 127.0.0.1, and credentials it accepts.

    The credentials are set in this process's environment for the session, so
    boto3 in the tests and in S3Store finds them as it would in production.
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    os.environ.update(aws_env(endpoint))
    try:
        yield endpoint
    finally:
        for key in [k for k in os.environ if k.startswith("AWS_")]:
            del os.environ[key]
        os.environ.update(saved)
        server.stop()


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    """A new, empty bucket on the S3 server."""
    import boto3

    name = f"ct-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name
