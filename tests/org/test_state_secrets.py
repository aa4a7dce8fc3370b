"""A PostgreSQL state's password, in any form libpq takes one, stays out of what is
written (DATA/state.json), of errors, and of command lines.

libpq takes a password in a URL's userinfo, as a `password=` URL parameter and
in a keyword string; the session's cluster trusts local connections, so a
password given is accepted and ignored, and each test searches for it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cleartrace.errors import StoreError, UsageError
from cleartrace.org.state import STATE_FILE, open_state, shared_url
from tests.support.cli import ct
from tests.support.postgres import Postgres

SECRET = "hunter2-not-for-logs"  # noqa: S105 (a canary, searched for)


def _with_password(url: str, where: str) -> str:
    if where == "userinfo":
        return url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@", 1)
    return url + f"&password={SECRET}"


@pytest.mark.parametrize("where", ["userinfo", "parameter"])
def test_a_password_in_the_url_is_not_written_to_state_json(
    tmp_path: Path, postgres: Postgres, where: str
) -> None:
    url = postgres.new_database()
    open_state(tmp_path / "data", _with_password(url, where)).close()
    assert SECRET not in (tmp_path / "data" / STATE_FILE).read_text()
    assert shared_url(tmp_path / "data") == url


@pytest.mark.parametrize("where", ["userinfo", "parameter"])
def test_a_password_in_the_url_is_not_in_the_error(
    tmp_path: Path, postgres: Postgres, where: str
) -> None:
    url = _with_password(postgres.url("no_such_database"), where)
    with pytest.raises(StoreError) as failed:
        open_state(tmp_path / "data", url)
    assert "no_such_database" in str(failed.value)
    assert SECRET not in str(failed.value)


def test_a_libpq_keyword_state_is_refused_without_its_password(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as refused:
        open_state(tmp_path, f"host=db.example user=ct password={SECRET} dbname=fleet")
    assert "db.example" in str(refused.value)
    assert SECRET not in str(refused.value)


def test_state_json_names_the_same_server_when_a_parameter_holds_an_at_sign(
    tmp_path: Path, postgres: Postgres
) -> None:
    # DATA/state.json is what the operator is told to give ingest and the audit: it
    # must name the server and database the collector serves, whatever its
    # parameters hold.
    url = postgres.new_database() + "&application_name=collector@host1"
    open_state(tmp_path / "data", _with_password(url, "userinfo")).close()
    assert shared_url(tmp_path / "data") == url


@pytest.mark.parametrize(
    "command", [["serve", "--port", "0"], ["token"], ["devices"]], ids=lambda c: c[0]
)
@pytest.mark.parametrize("where", ["userinfo", "parameter"])
def test_a_state_with_a_password_is_refused_on_the_command_line(
    tmp_path: Path, command: list[str], where: str
) -> None:
    # A process's command line is every local user's to read (ps, /proc/PID/cmdline):
    # the collector refuses to start with one there, before connecting anywhere.
    url = _with_password("postgresql://postgres@db.invalid/fleet?sslmode=disable", where)
    data = tmp_path / "data"
    done = ct("org", *command, "--data", str(data), "--state", url, check=False)
    assert done.returncode == 2
    assert "PGPASSWORD" in done.stderr
    assert ".pgpass" in done.stderr
    assert SECRET not in done.stderr + done.stdout
    assert not data.exists()


def test_heads_from_a_keyword_state_with_a_password_is_not_echoed(tmp_path: Path) -> None:
    """`--heads-from` given a libpq keyword string: its error goes to the terminal and
    to whatever logs the run."""
    keys, store = tmp_path / "keys", tmp_path / "store"
    store.mkdir()
    ct("org", "keygen", "--out", str(keys), "--suite", "x25519")
    state = f"host=db.invalid user=ct password={SECRET} dbname=fleet"
    done = ct("org", "ingest", "--from", str(store), "--keys", str(keys),
              "--out", str(tmp_path / "dataset"), "--heads-from", state,
              check=False)  # fmt: skip
    assert done.returncode == 2
    assert SECRET not in done.stderr + done.stdout, done.stderr
