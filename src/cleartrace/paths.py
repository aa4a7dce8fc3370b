"""Where ClearTrace keeps its files, and the permissions they must have.

`Paths` is pure: building one touches nothing. `ensure_private_dirs()` is the
one place that creates the home (0700) and tightens what it finds.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TextIO, cast

import platformdirs

from cleartrace.errors import DiskFull, HomeError, KeyStorageError, UsageError

__all__ = [
    "Paths",
    "check_home",
    "ensure_private_dirs",
    "exclusive_lock",
    "fsync_dir",
    "log_to_home",
    "private_file",
    "read_private_file",
    "write_private",
    "write_private_bytes",
]

log = logging.getLogger(__name__)

_APP = "cleartrace"
#: The runtime directory inside the home, when the session has no XDG_RUNTIME_DIR.
_RUN = "run"


@dataclass(frozen=True, slots=True)
class Paths:
    """All locations derived from one home directory."""

    home: Path
    runtime: Path

    @classmethod
    def from_env(cls) -> Paths:
        """`CLEARTRACE_HOME` when set, else the platform's user data directory."""
        env = os.environ.get("CLEARTRACE_HOME")
        home = Path(env).expanduser().absolute() if env else Path(platformdirs.user_data_dir(_APP))
        return cls(home=home, runtime=_runtime_dir(home))

    @property
    def db(self) -> Path:
        return self.home / "store.db"

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def keystore_marker(self) -> Path:
        """Records which key storage holds this home's keys (no key material)."""
        return self.home / "keystore.json"

    @property
    def log(self) -> Path:
        return self.home / "cleartrace.log"

    @property
    def socket(self) -> Path:
        """The recorder's control socket, one per home, short enough for AF_UNIX."""
        if self.runtime == self.home / _RUN:
            return self.runtime / "control.sock"  # the home's own: no other home shares it
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:16]
        return self.runtime / f"cleartrace-{digest}.sock"


def _runtime_dir(home: Path) -> Path:
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_dir():
        return Path(xdg)
    # No per-user runtime dir (root on a server, a bare container): a directory
    # inside the home, private because the home is. Not a predictable name in
    # the shared temp dir, which another user could create first (owned by
    # them, or a symlink) and so block every command or read the socket.
    return home / _RUN


def _fix_for(path: Path, paths: Paths) -> str:
    if path == paths.runtime and path != paths.home / _RUN:
        return "set XDG_RUNTIME_DIR to a directory you own, or unset it"
    return "choose a home you own with CLEARTRACE_HOME"


def check_home(home: Path) -> None:
    """Refuse a home that lies in a directory another user owns or may write
    to, directly or through a symbolic link on the way (they could rename it
    and put their own files, keys or socket in its place).

    Both the path as given and the path its links resolve to are walked: a
    link's target may lie under someone else's directory even when every
    directory named on the way is ours. Root's directories are trusted unless
    group or others may write to them without the sticky bit (/tmp has it:
    there nobody may rename another's entries).

    Raises:
        HomeError: the message names the directory, its owner and the link.
    """
    link = _check_walk(home, home, None)
    resolved = home.resolve()
    if resolved != home:
        _check_walk(home, resolved, link or home)


def _check_walk(home: Path, path: Path, link: Path | None) -> Path | None:
    """Check every directory from the root down to `path`; returns the first
    symbolic link met (for messages). Stops at the first part that does not
    exist yet: what is created below is created by us."""
    trusted = {os.getuid(), 0}
    current = Path(path.anchor)
    for part in path.parts[1:]:
        current = current / part
        try:
            if stat.S_ISLNK(current.lstat().st_mode) and link is None:
                link = current
            st = current.stat()
        except FileNotFoundError:
            return link
        except OSError as exc:
            raise HomeError(f"cannot check the home {home}: {exc.strerror} at {current}") from exc
        via = f" through the symbolic link {link}" if link is not None else ""
        if st.st_uid not in trusted:
            raise HomeError(
                f"the home {home} lies{via} in {current.resolve()}, which belongs to another "
                f"user (uid {st.st_uid}) who could replace its files; "
                "choose a home you own with CLEARTRACE_HOME"
            )
        loose = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX
        if loose and current != path:  # the home itself is tightened by ensure_private_dirs
            raise HomeError(
                f"the home {home} lies{via} in {current.resolve()}, which group or others "
                f"may write to (mode {stat.S_IMODE(st.st_mode):o}, no sticky bit), so they "
                "could replace its files; choose a home you own with CLEARTRACE_HOME"
            )
    return link


def _tighten_or_refuse(path: Path, what: str, fix: str) -> None:
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        raise HomeError(f"{what} {path} is a symbolic link; use a real directory ({fix})")
    if st.st_uid != os.getuid():
        raise HomeError(f"{what} {path} belongs to another user (uid {st.st_uid}); {fix}")
    if st.st_mode & 0o077:
        log.warning(
            "%s %s was readable by group or others (mode %o); tightened to 0700",
            what,
            path,
            stat.S_IMODE(st.st_mode),
        )
        try:
            os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)
        except OSError as exc:
            raise HomeError(
                f"{what} {path} is readable by group or others and could not be "
                f"tightened ({exc.strerror}); run 'chmod 700 {path}'"
            ) from exc


def ensure_private_dirs(paths: Paths) -> None:
    """Create the home and runtime directories 0700; tighten existing ones.

    Files inside the home that are readable by group or others are tightened
    to 0600, so a copy restored with a loose umask does not stay exposed.

    Raises:
        HomeError: a directory is a symlink, belongs to someone else, lies in
            another user's directory, or cannot be created or tightened.
    """
    check_home(paths.home)
    for directory, what in (
        (paths.home, "home"),
        (paths.keys_dir, "key directory"),
        (paths.runtime, "runtime directory"),
    ):
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise HomeError(
                f"cannot create {what} {directory}: {exc.strerror}; "
                "set CLEARTRACE_HOME to a writable place"
            ) from exc
        _tighten_or_refuse(directory, what, _fix_for(directory, paths))
    for entry in paths.home.iterdir():
        st = entry.lstat()
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
            log.warning("%s was readable by group or others; tightened to 0600", entry)
            os.chmod(entry, 0o600)


def private_file(path: Path) -> int:
    """Open `path` for writing as a new or truncated 0600 file; returns the fd.

    O_NOFOLLOW refuses to write through a symlink planted in the home.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def read_private_file(path: Path, what: str, limit: int) -> bytes | None:
    """The bytes of a private file (a key) only this user may have written and
    may read; None when it does not exist. Every private key file is read here.

    Opened with O_NOFOLLOW and checked on the open descriptor, so the file
    checked is the file read. A file of another user is refused even at 0600:
    whoever owns it chose its content (their key, not ours).

    Raises:
        KeyStorageError: a symlink, not a regular file, another user's,
            readable by group or others, unreadable, or over `limit` bytes.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise KeyStorageError(
                f"{what} {path} is a symbolic link; refusing to use it "
                "(put the key file itself there)"
            ) from None
        raise KeyStorageError(f"cannot read {what} {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise KeyStorageError(f"{what} {path} is not a regular file; restore it")
        if st.st_uid != os.getuid():
            raise KeyStorageError(
                f"{what} {path} belongs to another user (uid {st.st_uid}), who chose its "
                f"content; restore your own key, or if you trust this one run "
                f"'chown {os.getuid()} {path}'"
            )
        if st.st_mode & 0o077:
            raise KeyStorageError(
                f"{what} {path} is readable by group or others; "
                f"run 'chmod 600 {path}' if you trust its content, and consider the key exposed"
            )
        try:
            raw = fh.read(limit + 1)
        except OSError as exc:
            raise KeyStorageError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(raw) > limit:
        raise KeyStorageError(f"{what} {path} is too large to be a key; restore it")
    return raw


def read_input(path: Path, limit: int) -> bytes:
    """At most `limit` + 1 bytes of a file a person named (a policy, a notice),
    so that a huge or endless file is refused by its size, not read whole.

    Raises:
        UsageError: it cannot be read.
    """
    try:
        with path.open("rb") as fh:
            return fh.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {path} ({exc.strerror}); check the file name") from None


def log_to_home(paths: Paths) -> None:
    """Send this process's log records to the home's log file (0600) as well.

    The recorder and the tray app log events and errors there, never content.
    """
    if not paths.log.exists():
        os.close(private_file(paths.log))
    handler = logging.FileHandler(paths.log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


@contextlib.contextmanager
def write_private(out: Path, what: str) -> Iterator[TextIO]:
    """Write the text file `out` (0600) all or nothing.

    The text goes to a temporary file next to `out`, is synced and renamed
    over `out`, so a reader or a crash never sees half of it.

    Raises:
        UsageError: `out` cannot be written (missing directory, no permission).
        DiskFull: no room for the file.
    """
    with _atomic(out, what, binary=False) as fh:
        yield cast(TextIO, fh)


def write_private_bytes(out: Path, data: bytes, what: str, *, durable: bool = True) -> None:
    """Write `data` to `out` (0600) all or nothing, as `write_private` does text.

    `durable=False` leaves out the two fsyncs (file and directory), for files
    whose loss in a crash something written after them shows (the audit's
    ledger exports, which the report's signature covers): a thousand of them
    cost seconds of waiting on the disk.

    Raises:
        UsageError: `out` cannot be written (missing directory, no permission).
        DiskFull: no room for the file.
    """
    with _atomic(out, what, binary=True, durable=durable) as fh:
        fh.write(data)


@contextlib.contextmanager
def _atomic(out: Path, what: str, *, binary: bool, durable: bool = True) -> Iterator[IO[Any]]:
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        fd = private_file(tmp)
        handle = (
            os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        )
        with handle as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if not isinstance(exc, OSError):
            raise
        if exc.errno == errno.ENOSPC:
            raise DiskFull(
                f"cannot write the {what} {out}: the disk is full; free some space"
            ) from exc
        raise UsageError(
            f"cannot write the {what} {out}: {exc.strerror}; "
            "choose a file in a directory you can write to"
        ) from exc
    if not durable:
        return
    with contextlib.suppress(OSError):
        fsync_dir(out.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename, creation or removal in `directory` survive a power loss
    (the entry lives in the directory's data); OSError if it cannot."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive_lock(path: Path, busy: str, *, wait: float = 0.0) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (created 0600) for the block,
    waiting up to `wait` seconds for another process to let it go.

    The kernel drops the lock when the process dies, so a crash never leaves
    a stale lock behind.

    Raises:
        UsageError: another process holds it (the message is `busy`), or the
            file cannot be opened.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise UsageError(f"cannot open the lock file {path}: {exc.strerror}") from exc
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise UsageError(busy) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)
