"""A real local Ray cluster: `ray start --head` on 127.0.0.1, as small as Ray runs.

`ray_head` starts the head node in a session of its own (`--block`, so the
`ray start` process stays and the processes it starts — GCS, raylet, the
workers — are in its process group) and, however the block ends, stops it:
`ray start` is sent SIGTERM (it then stops what it started), and whatever
is left in its group is killed; only this cluster's processes, never
another Ray on the machine (which `ray stop` would stop too). Its temp dir
— logs, sockets, session files, spilled objects, and the
`ray_current_cluster` file naming it — is the directory given, so a later
`ray.init()` elsewhere on the machine does not find it; the object store
itself is shared memory (/dev/shm), not a file there. Drivers must set the
cluster's token (`RayHead.driver`). Workers import cleartrace from where
this process does. Used by the tests' session fixture and by
benchmarks/ingest.py.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cleartrace
from tests.support.waiting import wait_for

__all__ = ["FileWatch", "RayHead", "cluster_files", "ray_head", "watch_files"]

#: The smallest object store Ray accepts (bytes): the tests move a few small tables.
OBJECT_STORE_BYTES = 80 * 1024 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cluster_files(root: Path) -> Iterator[tuple[Path, bytes]]:
    """Every regular file under `root` with its bytes, as it is now. Ray
    removes files while it runs (a spilled object once its last reference
    goes), so a file or directory gone between the listing and the read is
    passed over (`os.walk` skips a directory it can no longer list)."""
    for top, _, names in os.walk(root):
        for name in names:
            path = Path(top, name)
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                if path.is_file() and not path.is_socket():
                    yield path, path.read_bytes()


@dataclass
class FileWatch:
    """What `watch_files` saw: the files that held a needle, and every file
    read at least once (so a test can tell a spill happened)."""

    hits: set[Path] = field(default_factory=set)
    seen: set[Path] = field(default_factory=set)
    scans: int = 0


@contextlib.contextmanager
def watch_files(root: Path, needles: list[bytes], every: float = 0.05) -> Iterator[FileWatch]:
    """Read every file under `root` again and again while the block runs, and
    once more at its end: a file Ray writes and removes within the run (a
    spilled object freed once the driver has its result) is read while it is
    there, which a scan after the run would miss."""
    watch = FileWatch()
    stop = threading.Event()

    def scan() -> None:
        for path, data in cluster_files(root):
            watch.seen.add(path)
            if any(needle in data for needle in needles):
                watch.hits.add(path)
        watch.scans += 1

    def loop() -> None:
        while not stop.wait(every):
            scan()

    thread = threading.Thread(target=loop, name="ray-file-watch", daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        stop.set()
        thread.join()
        scan()


def _ray() -> str:
    return str(Path(sys.executable).with_name("ray"))


@dataclass(frozen=True)
class RayHead:
    """A running head node: its address (127.0.0.1:PORT), the directory of its
    files, and the environment a driver needs to join it (its token)."""

    address: str
    root: Path
    env: dict[str, str]

    @contextlib.contextmanager
    def driver(self) -> Iterator[str]:
        """This process's environment set to join the cluster while the block
        runs (Ray reads it at `ray.init`); yields the address."""
        saved = {name: os.environ.get(name) for name in self.env}
        os.environ.update(self.env)
        try:
            yield self.address
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@contextlib.contextmanager
def ray_head(
    root: Path,
    cpus: int = 2,
    timeout: float = 60.0,
    object_store_bytes: int | None = OBJECT_STORE_BYTES,
    token: Path | None = None,
) -> Iterator[RayHead]:
    """A head node with `cpus` CPUs (so at most that many tasks at once), its
    files (logs, sockets, spilled objects) under `root`; an object store of
    `object_store_bytes` (None: Ray's default, a share of the memory). Its
    authentication token is the file `token`, else a new one under `root`: a
    process joining clusters one after another gives them one token, since
    Ray reads a driver's token once per process."""
    root.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    code = str(Path(cleartrace.__file__).resolve().parents[1])
    # Token authentication, with a token of its own: whatever ~/.ray holds (a
    # token there turns it on for `ray start` but not for a driver), the node
    # and its drivers agree, and no other process on the network can use it.
    if token is None:
        token = root / "auth_token"
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    env = {
        **os.environ,
        **auth,
        "PYTHONPATH": os.pathsep.join(filter(None, [code, os.environ.get("PYTHONPATH")])),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    argv = [
        _ray(), "start", "--head", "--block",
        f"--port={port}", "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}", "--num-gpus=0",
        "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={root}",
    ]  # fmt: skip
    if object_store_bytes is not None:
        argv.append(f"--object-store-memory={object_store_bytes}")
    log = root / "ray-start.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        wait_for(
            lambda: b"Ray runtime started" in log.read_bytes() or proc.poll() is not None,
            timeout,
            "the Ray head node to start",
        )
        if proc.poll() is not None:
            raise AssertionError(f"ray start exited {proc.returncode}: see {log}")
        yield RayHead(f"127.0.0.1:{port}", root, auth)
    finally:
        # `ray start --block` stops (and waits for) what it started when told to.
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever outlived `ray start`
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
