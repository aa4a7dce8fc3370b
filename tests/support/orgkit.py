"""Helpers for upload tests: an organisation (keys, signed policy, a collector
process on 127.0.0.1, started by org_process) and sessions to upload."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import cleartrace.upload.client as client
from cleartrace.categories import Category
from cleartrace.consent.signed_policy import read_signed_policy
from cleartrace.errors import UploadError
from cleartrace.events import Kind, RawEvent, keysym_of_char
from cleartrace.home import Home
from cleartrace.org.keys import OrgKeys, generate
from cleartrace.org.policy_signing import init_policy
from cleartrace.paths import Paths
from cleartrace.store.session_state import SessionState
from cleartrace.upload.enrolment import enrol
from tests.support.cli import ct
from tests.support.notice import EXAMPLE_NOTICE
from tests.support.org_process import RunningCollector, start_collector


@dataclass
class Collector:
    """The organisation's `cleartrace org serve`, on a port fixed before it first starts.

    The signed policy names the collector's URL, so the port is chosen before
    the policy is signed, and every restart comes back on it. `running` is None
    while it is stopped.
    """

    data: Path
    policy: Path
    port: int = 0
    extra: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    running: RunningCollector | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        # The collector runs as the organisation's machine would, without the device's home.
        env = {k: v for k, v in os.environ.items() if k != "CLEARTRACE_HOME"}
        args = ("--policy", str(self.policy), "--host", self.host, *self.extra)
        self.running = start_collector(self.data, *args, env=env, port=self.port)
        self.port = int(self.running.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None

    def token(self) -> str:
        return ct("org", "token", "--data", str(self.data)).stdout.strip()

    def bundles(self) -> list[str]:
        return sorted(p.stem for p in (self.data / "bundles").glob("*.ctb"))


@dataclass
class Org:
    keys: OrgKeys
    keys_dir: Path
    policy: Path
    collector: Collector


def make_org(
    root: Path,
    *,
    suite: str = "mlkem768-x25519",
    extra: tuple[str, ...] = (),
    keep_uploaded_days: int | None = None,
    host: str = "127.0.0.1",
) -> Org:
    keys_dir = root / "keys"
    keys = generate(keys_dir, suite=suite)
    policy = root / "policy.json"
    collector = Collector(root / "data", policy, extra=extra, host=host)
    # The port is fixed before the policy is signed: the policy names the collector.
    with socket.socket() as s:
        s.bind((host, 0))
        collector.port = s.getsockname()[1]
    init_policy(
        keys_dir,
        collector.url,
        policy,
        keep_uploaded_days=keep_uploaded_days,
        notice=EXAMPLE_NOTICE,
        # Every category, typing rhythm too (an organisation names it to ask for it):
        # tests that give consent to everything get events with their timing as typed.
        categories=tuple(Category),
    )
    return Org(keys, keys_dir, policy, collector)


def record_session(home: Home, n_keys: int = 200, *, app: str = "xterm") -> str:
    """A closed session of `n_keys` key presses and releases after a focus change."""
    wall, mono = time.time_ns(), time.monotonic_ns()
    handle = home.store.begin_session(wall, mono)
    home.ledger.append("session.started", session=handle.id)
    events: list[RawEvent] = [(mono + 1_000, int(Kind.FOCUS), 0, 0, 0, 0, (app, "notes"))]
    for i in range(n_keys):
        keysym = 0x61 + i % 26
        events.append((mono + 2_000 + i * 2_000, int(Kind.KEY_DOWN), keysym, 0, 0, 0, None))
        events.append((mono + 3_000 + i * 2_000, int(Kind.KEY_UP), keysym, 0, 0, 0, None))
    home.store.append_chunk(handle, events)
    home.store.end_session(handle, time.time_ns())
    home.ledger.append("session.ended", session=handle.id)
    return handle.id


def record_text(home: Home, text: str, title: str = "notes") -> str:
    """A closed session in which `text` was typed into a text editor (its
    window titled `title`), a key every 90 ms."""
    wall, mono = time.time_ns(), time.monotonic_ns()
    handle = home.store.begin_session(wall, mono)
    home.ledger.append("session.started", session=handle.id)
    events: list[RawEvent] = [(mono + 1_000, int(Kind.FOCUS), 0, 0, 0, 0, ("gedit", title))]
    for i, char in enumerate(text):
        t = mono + 2_000 + i * 90_000_000
        events.append((t, int(Kind.KEY_DOWN), keysym_of_char(char), 0, 0, 0, None))
        events.append((t + 40_000_000, int(Kind.KEY_UP), keysym_of_char(char), 0, 0, 0, None))
    home.store.append_chunk(handle, events)
    home.store.end_session(handle, time.time_ns())
    home.ledger.append("session.ended", session=handle.id)
    return handle.id


def approve(home: Home, session_id: str) -> None:
    home.store.set_state(
        session_id,
        SessionState.APPROVED,
        lambda conn: home.ledger.append_in(
            conn, "session.approved", session=session_id, by="person"
        ),
    )


def enrolled(org: Org, paths: Paths) -> Home:
    """The home at `paths`, opened (created) and enrolled with `org` on a new token."""
    home = Home.open(paths, create=True)
    signed = read_signed_policy(org.policy.read_bytes())
    enrol(home, org.collector.url, signed, org.collector.token())
    return home


def org_audit(
    org: Org, out: Path, *extra: str, data: Path | None = None, keys: Path | None = None
) -> Any:
    """`cleartrace org audit` of the collector's store (or `data`) into `out`, checked
    against its witness key, with `extra` options; not checked for its exit status."""
    data = org.collector.data if data is None else data
    return ct(
        "org", "audit", "--from", str(data), "--keys", str(keys or org.keys_dir),
        "--witness-key", str(data / "witness.pub"), "--out", str(out), *extra, check=False,
    )  # fmt: skip


def aws_env(endpoint: str) -> dict[str, str]:
    """Credentials moto accepts, and nothing of the real environment's AWS settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106 - moto's dummy credentials
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
    )
    return env


def lose_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next PUT reaches the collector, which stores the bundle; its answer is lost."""
    real = client.CollectorClient.put_bundle

    def put(
        self: client.CollectorClient, name: str, data: bytes, device_key: Ed25519PrivateKey
    ) -> client.Ack:
        real(self, name, data, device_key)
        monkeypatch.setattr(client.CollectorClient, "put_bundle", real)
        raise UploadError("the connection dropped (test)", retryable=False)

    monkeypatch.setattr(client.CollectorClient, "put_bundle", put)
