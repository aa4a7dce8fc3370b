"""A fleet process's data directory and its DATA/state.json: written for people, never
followed by a program.

DATA is the collector's default bundle store, so whoever may put bundles there
may write a state.json too. Ingest and the audit are given the state itself
(`--heads-from postgresql://…`); given DATA, they refuse, naming that state.
Commands given DATA without `--state` refuse too, rather than starting an empty
DATA/collector.db beside the fleet's state.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.errors import StoreError, UsageError
from cleartrace.org.registry_db import DB_NAME, read_devices, read_org_ledger
from cleartrace.org.state import STATE_FILE, open_state
from tests.support.cli import ct
from tests.support.postgres import Postgres

SECRET = "hunter2-not-for-logs"  # noqa: S105 (a canary, searched for)


def _fleet_data(tmp_path: Path, postgres: Postgres) -> tuple[Path, str, str]:
    """A fleet process's data directory, its state, and a device enrolled there."""
    url = postgres.new_database()
    data = tmp_path / "data"
    state = open_state(data, url)
    try:
        key = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
        device = state.enroll(state.issue_tokens(1)[0], key).device
    finally:
        state.close()
    return data, url, device


@pytest.mark.parametrize(
    "command", [["devices"], ["token"], ["serve", "--port", "0"]], ids=lambda c: c[0]
)
def test_a_command_without_state_on_a_fleets_data_refuses_naming_the_state(
    tmp_path: Path, postgres: Postgres, command: list[str]
) -> None:
    # An operator forgets --state on a fleet process's data directory: no empty
    # collector.db is started there (ingest and the audit would read it instead).
    data, url, device = _fleet_data(tmp_path, postgres)
    done = ct("org", *command, "--data", str(data), check=False)
    assert done.returncode == 2
    assert f"--state '{url}'" in done.stderr
    assert not (data / DB_NAME).exists()
    assert set(read_devices(url)) == {device}


def test_a_fleets_data_given_as_heads_from_is_refused_naming_the_state(
    tmp_path: Path, postgres: Postgres
) -> None:
    data, url, _ = _fleet_data(tmp_path, postgres)
    for read in (read_devices, read_org_ledger):
        with pytest.raises(UsageError) as refused:
            read(data)
        assert f"--heads-from '{url}'" in str(refused.value)
    keys = tmp_path / "keys"
    ct("org", "keygen", "--out", str(keys), "--suite", "x25519")
    done = ct("org", "ingest", "--from", str(data), "--keys", str(keys),
              "--out", str(tmp_path / "dataset"), "--heads-from", str(data),
              check=False)  # fmt: skip
    assert done.returncode == 2
    assert f"--heads-from '{url}'" in done.stderr


def test_heads_from_a_state_with_a_password_is_refused(tmp_path: Path) -> None:
    url = f"postgresql://ct:{SECRET}@db.invalid/fleet"
    done = ct("org", "ingest", "--from", str(tmp_path), "--keys", str(tmp_path / "keys"),
              "--out", str(tmp_path / "dataset"), "--heads-from", url, check=False)  # fmt: skip
    assert done.returncode == 2
    assert "PGPASSWORD" in done.stderr
    assert SECRET not in done.stderr


def test_a_planted_state_json_does_not_get_ingest_to_send_its_password_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whoever can write bundles into DATA can write DATA/state.json, naming a server
    # of their own that asks for the password in the clear; ingest and the audit
    # would answer it with PGPASSWORD.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(5)
    port = listener.getsockname()[1]
    heard = bytearray()

    def fake_server() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(5)
                while True:
                    (length,) = struct.unpack("!i", conn.recv(4, socket.MSG_WAITALL))
                    body = conn.recv(length - 4, socket.MSG_WAITALL)
                    if struct.unpack("!i", body[:4])[0] in (80877103, 80877104):
                        conn.sendall(b"N")  # no TLS, no GSS: ask again in the clear
                        continue
                    break
                conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # cleartext password, please
                heard.extend(conn.recv(4096))

    thread = threading.Thread(target=fake_server, daemon=True)
    thread.start()
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    planted = {"v": 1, "type": "cleartrace-collector-state"}
    planted["state"] = f"postgresql://ct@127.0.0.1:{port}/fleet?connect_timeout=2"
    (data / STATE_FILE).write_text(json.dumps(planted))
    monkeypatch.setenv("PGPASSWORD", SECRET)
    try:
        for read in (read_devices, read_org_ledger):
            with contextlib.suppress(StoreError, UsageError):
                read(data)
    finally:
        listener.close()
        thread.join(timeout=10)
    assert SECRET.encode() not in heard
