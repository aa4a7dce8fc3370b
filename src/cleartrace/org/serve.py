"""`cleartrace org serve`: the collector on uvicorn, loopback unless told otherwise.

uvicorn (see `org.collector` for why) runs one process with one event loop.
On the embedded state (DATA/collector.db) per-device locks live in memory,
so the collector must not be forked into workers, and a lock file in DATA
keeps a second collector off the same data. On PostgreSQL (`--state
postgresql://…`, org/registry_pg.py) the locks are the database's, and any
number of collector processes, on any hosts, serve one fleet side by side
(docs/cli.md, "Running a fleet"). Blocking work goes to a thread pool, so the
loop keeps receiving.

The socket is bound here before uvicorn starts, so `--port 0` picks a free
port and the URL printed once the server is ready names the real one. SIGINT
and SIGTERM stop accepting, let requests in flight finish (up to 30 s), and
return normally.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import signal
import socket
import ssl
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from cleartrace.errors import StoreError, UsageError
from cleartrace.org.blobstore import DirStore, S3Store, open_store
from cleartrace.org.collector import Collector, ServedPolicy, load_served_policy
from cleartrace.org.connections import head_deadline_protocol
from cleartrace.org.limits import (
    DEFAULT_BODY_MEMORY_MB,
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_ENROLL_RATE,
    DEFAULT_ENROLL_RATE_TOTAL,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_BUNDLE_MB,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MIN_BODY_RATE_KIB,
    DEFAULT_RATE,
    Rate,
)
from cleartrace.org.registry_db import LOCK_NAME
from cleartrace.org.state import CollectorState, open_state
from cleartrace.org.witness import DEFAULT_RECHECK_HEADS
from cleartrace.paths import exclusive_lock

__all__ = ["ServeOptions", "serve"]

log = logging.getLogger(__name__)
#: The most a request line and headers may take; a device sends a few hundred bytes.
MAX_REQUEST_HEAD = 16 * 1024

#: How long requests in flight may take to finish after SIGINT/SIGTERM.
GRACEFUL_SECONDS = 30


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What `cleartrace org serve` was asked for."""

    data: Path
    port: int
    #: None: DATA/collector.db; a postgresql:// URL: a database a fleet shares.
    state: str | None = None
    host: str = "127.0.0.1"
    store: str | None = None
    s3_endpoint: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    policy: Path | None = None
    max_bundle_mb: float = DEFAULT_MAX_BUNDLE_MB
    rate: Rate = field(default=DEFAULT_RATE)
    recheck_heads: float = DEFAULT_RECHECK_HEADS
    body_memory_mb: float = DEFAULT_BODY_MEMORY_MB
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    enroll_rate: Rate = field(default=DEFAULT_ENROLL_RATE)
    enroll_rate_total: Rate = field(default=DEFAULT_ENROLL_RATE_TOTAL)
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    min_body_rate_kib: float = DEFAULT_MIN_BODY_RATE_KIB
    max_connections: int = DEFAULT_MAX_CONNECTIONS


class _Server(uvicorn.Server):
    """uvicorn's server, announcing its URL when ready and exiting normally on a signal."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit:
            self._on_ready()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # uvicorn re-raises the signal after its graceful shutdown, which would turn a
        # clean stop into "killed by SIGTERM"; a stopped collector exits 0.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


@contextlib.contextmanager
def _data_lock(data: Path, state: CollectorState) -> Iterator[None]:
    """Hold DATA/collector.lock: one collector per data directory, unless its
    state is shared (PostgreSQL), whose processes coordinate in the database.

    Raises:
        UsageError: another collector holds it.
    """
    if state.shared:
        yield
        return
    busy = f"another collector is serving {data}; stop it first or choose another --data"
    with exclusive_lock(data / LOCK_NAME, busy):
        yield


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free port).

    Raises:
        UsageError: the address cannot be resolved or bound.
    """
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a TCP port (0-65535)")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}: {exc.strerror}; check --host") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port or --host"
        ) from exc
    return sock


def _url(sock: socket.socket, tls: bool) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}"


def _uvicorn_config(collector: Collector, options: ServeOptions) -> uvicorn.Config:
    """uvicorn's configuration, loaded now so that bad TLS files fail before binding.

    Raises:
        UsageError: only one of the TLS files given, or they cannot be loaded.
    """
    if (options.tls_cert is None) != (options.tls_key is None):
        raise UsageError("TLS needs both --tls-cert and --tls-key")
    fast = importlib.util.find_spec("uvloop") is not None
    config = uvicorn.Config(
        collector.app,
        loop="uvloop" if fast else "asyncio",
        # h11 rather than httptools: uvicorn bounds a request's line and headers only
        # with h11 (httptools buffers a header of any size), and a stranger's 20 MB
        # header must not be held. It costs some 10 % of upload throughput.
        # Our subclass of uvicorn's h11 protocol adds a deadline for the request
        # head (org.connections), which uvicorn lacks.
        http=head_deadline_protocol(options.header_timeout),
        h11_max_incomplete_event_size=MAX_REQUEST_HEAD,
        lifespan="off",
        # The collector logs what it does itself; uvicorn's access log and its
        # logging setup would replace the CLI's.
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        # Beyond this many connections at once uvicorn answers 503. A connection
        # that has not sent its request head within --header-timeout is closed
        # (uvicorn's keep-alive timer runs only after a response); idle kept-alive
        # ones close after 5 s.
        limit_concurrency=options.max_connections,
        timeout_keep_alive=5,
        ssl_certfile=str(options.tls_cert) if options.tls_cert else None,
        ssl_keyfile=str(options.tls_key) if options.tls_key else None,
    )
    try:
        config.load()
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(
            f"cannot load the TLS certificate or key ({type(exc).__name__}); check "
            "--tls-cert and --tls-key (PEM files, the key unencrypted)"
        ) from exc
    return config


@contextlib.contextmanager
def _rechecking_heads(collector: Collector, seconds: float) -> Iterator[None]:
    """Rewrite head files that differ from the registry every `seconds`, on a thread.

    A head file replaced in the store while the collector runs (an older,
    validly signed one put back) is rewritten and logged within `seconds`,
    not only at the next start. A failed pass, whatever failed, is logged and
    tried again: a check that ended for good would leave the store unwatched
    with nothing to show for it. On shutdown the pass stops between devices,
    so waiting for it takes one store request at most.
    """
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            try:
                collector.heads.rewrite(stop=stop.is_set)
            except StoreError as exc:
                log.warning("head files not checked against the registry: %s", exc)
            except Exception as exc:  # the thread must outlive any one pass
                # The type only: a message from deep down could carry anything.
                log.error("head files not checked against the registry: %s", type(exc).__name__)

    thread = threading.Thread(target=loop, name="recheck-heads", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _policy(path: Path | None) -> ServedPolicy | None:
    if path is None:
        return None
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the policy file {path}: {exc.strerror}") from exc
    return load_served_policy(raw, source=f"the policy file {path}")


def serve(options: ServeOptions, on_ready: Callable[[str], None]) -> None:
    """Serve until SIGINT or SIGTERM; `on_ready(url)` once connections are accepted.

    Raises:
        UsageError: bad options, an unusable data directory, store or TLS
            files, an address that cannot be bound, or DATA in use.
        PolicyRefused: the --policy file is not a valid signed policy.
        StoreError: the registry database or the store cannot be used.
    """
    if options.max_bundle_mb <= 0:
        raise UsageError("--max-bundle-mb must be positive")
    if not math.isfinite(options.recheck_heads) or options.recheck_heads < 1:
        raise UsageError("--recheck-heads must be a number of seconds, at least 1")
    if options.body_memory_mb < options.max_bundle_mb:
        raise UsageError("--body-memory-mb must be at least --max-bundle-mb")
    if options.body_timeout <= 0:
        raise UsageError("--body-timeout must be positive")
    if not math.isfinite(options.header_timeout) or options.header_timeout <= 0:
        raise UsageError("--header-timeout must be a positive number of seconds")
    if not math.isfinite(options.min_body_rate_kib) or options.min_body_rate_kib < 0:
        raise UsageError("--min-body-rate must be a number of KiB/s, 0 or more")
    if options.max_connections < 1:
        raise UsageError("--max-connections must be at least 1")
    policy = _policy(options.policy)
    registry = open_state(options.data, options.state)
    try:
        with _data_lock(options.data, registry):
            store = open_store(
                options.store if options.store is not None else str(options.data),
                endpoint_url=options.s3_endpoint,
            )
            if isinstance(store, S3Store):
                store.check()
            collector = Collector(
                registry,
                store,
                max_bundle_bytes=int(options.max_bundle_mb * 2**20),
                rate=options.rate,
                policy=policy,
                witness=registry.witness_key(),
                body_memory_bytes=int(options.body_memory_mb * 2**20),
                body_timeout=options.body_timeout,
                header_timeout=options.header_timeout,
                min_body_rate=options.min_body_rate_kib * 1024,
                enroll_rate=options.enroll_rate,
                enroll_rate_total=options.enroll_rate_total,
            )
            if isinstance(store, DirStore) and not registry.shared:
                # What a crash may have left: temporary files. (A store shared by a
                # fleet may hold another process's write in flight: left alone.)
                store.remove_stale_temporaries()
            # Head files a crash left behind the registry, in any store.
            collector.heads.rewrite()
            config = _uvicorn_config(collector, options)
            sock = _bind(options.host, options.port)
            url = _url(sock, tls=options.tls_cert is not None)
            server = _Server(config, lambda: on_ready(url))
            try:
                with _rechecking_heads(collector, options.recheck_heads):
                    server.run(sockets=[sock])
            finally:
                sock.close()
    finally:
        registry.close()
