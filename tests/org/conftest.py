"""Fixtures of the collector tests: organisation keys (the collector itself: org_process)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from org_process import aws_env

from cleartrace.org.keys import OrgKeys, generate, load_private


@pytest.fixture(scope="session")
def org_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An organisation key directory, as `cleartrace org keygen` writes it."""
    keys = tmp_path_factory.mktemp("org") / "keys"
    generate(keys)
    return keys


@pytest.fixture(scope="session")
def org(org_dir: Path) -> OrgKeys:
    return load_private(org_dir)


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


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a disk that fills up. Needs root (mount); skipped otherwise."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
