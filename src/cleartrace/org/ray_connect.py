"""`org ingest --engine ray`: this process joins (or starts) the Ray cluster.

Kept apart from the run (org/ingest_ray.py): which cluster a run goes to,
and what is said when it cannot: nothing listening, a token refused (said as
such, at once, rather than after Ray's retries as "cannot connect"), Ray not
installed, no local cluster. A crash test's fault point (cleartrace.faults)
is passed on to the run's workers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator

from cleartrace import faults
from cleartrace.errors import UsageError

__all__ = ["connected"]


def _reachable(address: str) -> None:
    """Fail at once, not after Ray's minutes of retries, where nothing listens."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except (OSError, ValueError):
        raise UsageError(
            f"nothing answers at {address}; give the HOST:PORT 'ray start --head' printed"
        ) from None


def _authenticated(address: str) -> None:
    """Fail at once, and say why, where the cluster refuses this process's token:
    `ray.init` would retry for many seconds and then only say it cannot connect."""
    import ray
    from ray._raylet import GcsClient  # type: ignore[attr-defined]

    if address.startswith("ray://"):
        return  # Ray Client: its own handshake, with its own errors
    try:
        GcsClient(address=address)
    except ray.exceptions.AuthenticationError:
        raise UsageError(
            f"the Ray cluster at {address} refused this process's token (missing or "
            "another); give the cluster's token with RAY_AUTH_MODE=token and "
            "RAY_AUTH_TOKEN_PATH=FILE (or RAY_AUTH_TOKEN)"
        ) from None


@contextlib.contextmanager
def connected(address: str | None) -> Iterator[None]:
    """This process as the driver of the Ray cluster at `address`, disconnected
    afterwards. None starts a new local cluster for the run: never one named by
    RAY_ADDRESS or left by an earlier `ray start` (Ray's own default), so the
    run goes to a cluster only when `--address` says which.

    Raises:
        UsageError: Ray is not installed, the cluster cannot be reached or
            refuses this process's token, or no local cluster can start.
    """
    try:
        import ray
    except ImportError:
        raise UsageError(
            "the ray engine needs Ray; install it with: pip install 'cleartrace[ray]'"
        ) from None
    if address is not None:
        _reachable(address)
        _authenticated(address)
    # Ray reports usage to its makers unless told not to; a consent-first tool does not.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # A crash test's fault point reaches the workers too (cleartrace.faults).
    armed = os.environ.get(faults.TESTING) == "1" and faults.ENV in os.environ
    forward = {faults.TESTING: "1", faults.ENV: os.environ.get(faults.ENV, "")}
    try:
        ray.init(
            address="local" if address is None else address,
            runtime_env={"env_vars": forward} if armed else None,
            log_to_driver=False,
            logging_level=logging.WARNING,
            configure_logging=False,
            # Only for a cluster started here (a given one has its own settings).
            include_dashboard=False if address is None else None,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        if address is None:
            raise UsageError(
                f"cannot start a local Ray cluster ({type(exc).__name__}); start one with "
                "'ray start --head' and give its address with --address"
            ) from None
        raise UsageError(
            f"cannot reach the Ray cluster at {address} ({type(exc).__name__}); start it "
            "with 'ray start --head' or give its address with --address"
        ) from None
    try:
        yield
    finally:
        ray.shutdown()
