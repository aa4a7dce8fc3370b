"""The PostgreSQL state's connections (org/registry_pg.py uses them): how each is
made, a small pool of them, and psycopg's errors as StoreErrors.

A server that stops answering must fail the call, not hold a worker thread for
good: every connection gets `CONNECT_DEFAULTS` and `STATEMENT_TIMEOUT` unless
its URL sets its own. A pooled connection may have died while idle (a server
restart, a failover, an idle timeout, a terminated backend): when the first
statement of a call fails on one because its connection broke, nothing of the
call ran, and it runs once more on a fresh connection; a failure after that
first statement is the caller's StoreError (a transaction whose connection
broke was rolled back by the server).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from cleartrace.errors import StoreError
from cleartrace.org.state import redacted, scrubbed

__all__ = ["CONNECT_DEFAULTS", "STATEMENT_TIMEOUT", "Conn", "Pool", "connect"]

Conn = psycopg.Connection[Any]
_T = TypeVar("_T")

#: What a connection to the state gets unless its URL says otherwise: seconds to
#: establish it; TCP keepalives probing an idle connection after 30 s, every 10 s,
#: 3 times; at most 30 s (in ms) for sent data to go unacknowledged.
CONNECT_DEFAULTS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",
}
#: The longest one statement may run, set on every connection unless the URL's
#: `options` sets one: it also bounds the wait for a device's head lock.
STATEMENT_TIMEOUT = "30s"


def connect(url: str, *, autocommit: bool = True) -> Conn:
    """A connection to `url` with `CONNECT_DEFAULTS` and `STATEMENT_TIMEOUT` where the
    URL does not set its own.

    Raises:
        psycopg.Error: it cannot be made.
    """
    given = conninfo_to_dict(url)
    extra = {k: v for k, v in CONNECT_DEFAULTS.items() if k not in given}
    conn = psycopg.connect(
        make_conninfo(url, **extra), autocommit=autocommit, application_name="cleartrace"
    )
    try:
        if "statement_timeout" not in str(given.get("options", "")):
            conn.execute("SELECT set_config('statement_timeout', %s, false)", (STATEMENT_TIMEOUT,))
            if not autocommit:
                conn.commit()
    except BaseException:
        conn.close()
        raise
    return conn


class Pool:
    """Autocommit connections to one database (transactions explicit): as many as
    were ever in use at once, whichever threads used them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.where = redacted(url)
        #: Connections not in use, most recently returned last.
        self._idle: list[Conn] = []
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    @contextmanager
    def errors(self) -> Iterator[None]:
        """psycopg's errors as StoreError naming the database (never its password)."""
        try:
            yield
        except psycopg.errors.QueryCanceled:
            raise StoreError(
                f"the collector's state at {self.where} did not finish a statement within "
                f"its statement_timeout ({STATEMENT_TIMEOUT} unless the URL's options set "
                "one): the server is overloaded, or a device's head lock is held that long"
            ) from None
        except psycopg.OperationalError as exc:
            text = scrubbed(str(exc).strip(), self.url)
            first = text.splitlines()[0] if text else type(exc).__name__
            raise StoreError(
                f"cannot use the collector's state at {self.where}: {first}; "
                "check that the PostgreSQL server is running and the URL is right"
            ) from None
        except psycopg.Error as exc:
            raise StoreError(
                f"the collector's state at {self.where} refused a statement "
                f"({type(exc).__name__}); check the database's permissions and disk"
            ) from None

    def _take(self) -> tuple[Conn, bool]:
        """An idle connection (True: it may have died meanwhile) or a new one."""
        with self._lock:
            if self._closed:
                raise StoreError(f"the collector's state at {self.where} is closed")
            conn = self._idle.pop() if self._idle else None
        return (conn, True) if conn is not None else (connect(self.url), False)

    def give(self, conn: Conn) -> None:
        """Return `conn` to the pool when it is sound and out of any transaction; else
        close it."""
        idle = psycopg.pq.TransactionStatus.IDLE
        keep = not conn.broken and conn.info.transaction_status == idle
        with self._lock:
            if keep and not self._closed:
                self._idle.append(conn)
                return
        conn.close()

    def started(self, first: Callable[[Conn], _T]) -> tuple[Conn, _T]:
        """A connection on which `first` (the call's first statement) ran, and what it
        gave: run once more on a fresh connection when a pooled one had died.

        Raises:
            psycopg.Error: `first` failed otherwise (the connection is given back).
        """
        conn, pooled = self._take()
        try:
            return conn, first(conn)
        except psycopg.OperationalError:
            self.give(conn)
            if not (pooled and conn.broken):
                raise
        except BaseException:
            self.give(conn)
            raise
        conn = connect(self.url)
        try:
            return conn, first(conn)
        except BaseException:
            self.give(conn)
            raise

    def read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.errors():
            conn, rows = self.started(lambda c: c.execute(sql, params).fetchall())
            self.give(conn)
            return rows

    @contextmanager
    def tx(self, on: Conn | None = None) -> Iterator[Conn]:
        """One transaction, on a connection of the pool or on `on` (a head lock's,
        which is not run again elsewhere: its lock ended with its session)."""
        with self.errors():
            if on is None:
                conn, _ = self.started(lambda c: c.execute("BEGIN"))
            else:
                conn = on
                conn.execute("BEGIN")
            try:
                yield conn
            except BaseException:
                if not conn.broken:
                    with suppress(psycopg.Error):
                        conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")
            finally:
                if on is None:
                    self.give(conn)
