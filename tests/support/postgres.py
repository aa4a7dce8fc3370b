"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries, one
cluster per test session, on a Unix socket in a temporary directory.

initdb and postgres refuse to run as root, and the tests run as root, so the
cluster belongs to the `postgres` system user (runuser); its directory is made
under the system's temporary directory, which that user can reach (pytest's
own directories are private to root). Durability is switched off for tests
(a test cluster never outlives a crash), and on for benchmarks/fleet.py,
which measures what a real server pays. `pg_ctl -w` waits for the server itself, and
the cluster is stopped and removed whatever the tests did.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PG_BIN", "Postgres", "postgres_cluster"]

PG_BIN = Path("/usr/lib/postgresql/15/bin")
_USER = "postgres"


@dataclass(frozen=True)
class Postgres:
    """A running cluster: its socket directory, and databases made on demand."""

    socket_dir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{_USER}@/{database}?host={self.socket_dir}"

    def new_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        name = f"ct_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def password_database(self, password: str) -> str:
        """A fresh database owned by a role of its own that must give `password`
        (scram-sha-256, for that role on that database only: every other
        connection stays trusted); returns its URL, the password in it.

        The rule goes first in pg_hba.conf (the first matching line decides)
        and the server is told to reload it; returns once a connection
        without the password is refused."""
        import psycopg

        from tests.support.waiting import wait_for

        name = f"ct_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'")
            conn.execute(f'CREATE DATABASE "{name}" OWNER "{name}"')
            hba = self.socket_dir / "data" / "pg_hba.conf"
            hba.write_text(f"local {name} {name} scram-sha-256\n" + hba.read_text())
            conn.execute("SELECT pg_reload_conf()")

        def refused() -> bool:
            try:
                psycopg.connect(f"postgresql://{name}@/{name}?host={self.socket_dir}").close()
            except psycopg.OperationalError:
                return True
            return False

        wait_for(refused, 10.0, "PostgreSQL to ask for the password")
        return f"postgresql://{name}:{password}@/{name}?host={self.socket_dir}"


#: The collector's own sessions on the database a connection is made to.
COLLECTOR_SESSIONS = (
    "pg_stat_activity WHERE datname = current_database() AND application_name = 'cleartrace'"
)


def collector_connections(url: str) -> int:
    """How many connections the collector's state holds open to `url`'s database."""
    import psycopg

    with psycopg.connect(url) as conn:
        query = "SELECT count(*) FROM " + COLLECTOR_SESSIONS  # noqa: S608 - a constant
        ((held,),) = conn.execute(query).fetchall()
    return int(held)


def _as_postgres(*argv: str) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", _USER, "--", *argv]
    return list(argv)


@contextlib.contextmanager
def postgres_cluster(*, durable: bool = False) -> Iterator[Postgres]:
    """initdb, start, yield, stop (fast, then immediate) and remove the cluster;
    `durable` keeps PostgreSQL's fsync on commit (its default)."""
    if not (PG_BIN / "initdb").exists():
        raise AssertionError(f"no PostgreSQL server in {PG_BIN}; run 'make sysdeps'")
    root = Path(tempfile.mkdtemp(prefix="ct-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        owner = pwd.getpwnam(_USER)
        os.chown(root, owner.pw_uid, owner.pw_gid)
    pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(data)]
    started = False
    try:
        subprocess.run(
            _as_postgres(
                str(PG_BIN / "initdb"), "-D", str(data), "-U", _USER, "--auth=trust", "-E", "UTF8"
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        fast = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        options = (
            f"-k {root} -c listen_addresses='' {'' if durable else fast}"
            "-c max_connections=300 -c shared_buffers=32MB"
        )
        subprocess.run(
            _as_postgres(
                *pg_ctl, "-w", "-t", "60", "-l", str(root / "log"), "-o", options, "start"
            ),
            check=True,
            capture_output=True,
            timeout=90,
        )
        started = True
        yield Postgres(root)
    finally:
        if started:
            stop = subprocess.run(
                _as_postgres(*pg_ctl, "-w", "-t", "30", "-m", "fast", "stop"),
                capture_output=True,
                timeout=60,
                check=False,
            )
            if stop.returncode != 0:
                subprocess.run(
                    _as_postgres(*pg_ctl, "-m", "immediate", "stop"),
                    capture_output=True,
                    timeout=60,
                    check=False,
                )
        shutil.rmtree(root, ignore_errors=True)
