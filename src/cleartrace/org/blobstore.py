"""Where the collector keeps bundles and witnessed heads: a directory or S3-compatible storage.

Both stores hold the same keys::

    bundles/<sha256>.ctb      the bundle's bytes, named by their hash
    heads/<device_hex>.json   the signed witnessed head, rewritten per bundle (bundle-format.md)
    erased/<subject>.json     an erasure receipt: the subject's bundles were removed, and
                              ingest and the audit skip any of its that come again
                              (org/subjects.py)

and both write all or nothing: `DirStore` writes a temporary file next to the
target, syncs it, renames it over the target and syncs the directory; S3 makes
an object visible only once the whole body arrived, and the SHA-256 checksum
sent with it makes the server refuse a body that arrived damaged or short.

`open_store("DIR" | "s3://bucket/prefix")` picks one; ingest reads through the
same protocol.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import logging
import os
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from cleartrace.errors import DiskFull, StoreError, UsageError
from cleartrace.paths import fsync_dir

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "BlobStore",
    "DirStore",
    "S3Store",
    "bundle_key",
    "erased_key",
    "head_key",
    "open_store",
]

log = logging.getLogger(__name__)

# Keys are ours, never a client's: a fixed alphabet keeps them out of parent directories.
_KEY = re.compile(r"(bundles|heads)/[0-9a-f]{64}\.(ctb|json)|erased/[0-9a-f]{32}\.json")
_TMP_SUFFIX = ".tmp"


def bundle_key(name: str) -> str:
    """The key of the bundle whose hex SHA-256 is `name`."""
    return f"bundles/{name}.ctb"


def head_key(device_hex: str) -> str:
    """The key of the witnessed-head file of a device (fingerprint hex, no prefix)."""
    return f"heads/{device_hex}.json"


def erased_key(subject: str) -> str:
    """The key of the erasure receipt of a pseudonymous subject (32 hex)."""
    return f"erased/{subject}.json"


def _check_key(key: str) -> None:
    if not _KEY.fullmatch(key):
        raise ValueError(
            "a blob key must be bundles/<64 hex>.ctb, heads/<64 hex>.json or erased/<32 hex>.json"
        )


class BlobStore(Protocol):
    """All-or-nothing object storage for bundles and heads."""

    def put(self, key: str, data: bytes | bytearray, *, durable: bool = True) -> None:
        """Store `data` under `key`, replacing what was there; readers never see half of it.

        `durable=False` allows a store to skip syncing to disk (a crash may
        then lose the write): for copies whose original is kept durably elsewhere.
        """
        ...

    def get(self, key: str) -> bytes:
        """The bytes under `key`; StoreError if there are none."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Every key under `prefix` ("bundles/", "heads/" or "erased/"), sorted."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object under `key` for good (none there: nothing to do)."""
        ...

    def describe(self) -> str:
        """Where the store is, for messages (no credentials)."""
        ...


# -- directory ------------------------------------------------------------------------


class DirStore:
    """Objects as files under `root`; one temporary file per write, synced and renamed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return str(self.root)

    def put(self, key: str, data: bytes | bytearray, *, durable: bool = True) -> None:
        """Write `data` to root/key all or nothing; synced to disk unless not `durable`.

        Raises:
            DiskFull: no room (ENOSPC) or quota exceeded (EDQUOT); nothing is left behind.
            StoreError: any other write failure; nothing is left behind.
        """
        _check_key(key)
        target = self.root / key
        # A unique name per write: two requests (threads) may store the same key at once.
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}{_TMP_SUFFIX}")
        try:
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
            if durable:
                fsync_dir(target.parent)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(
                    f"cannot store {key} in {self.root}: the disk is full; free some space "
                    "(the upload was refused and the device keeps the bundle)"
                ) from exc
            raise StoreError(
                f"cannot store {key} in {self.root}: {exc.strerror}; check the directory's "
                "permissions and the disk"
            ) from exc

    def get(self, key: str) -> bytes:
        """The bytes of root/key.

        Raises:
            StoreError: there is no such object, or it cannot be read.
        """
        _check_key(key)
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError as exc:
            raise StoreError(f"there is no {key} in {self.root}") from exc
        except OSError as exc:
            raise StoreError(f"cannot read {key} in {self.root}: {exc.strerror}") from exc

    def list(self, prefix: str) -> list[str]:
        """Keys under `prefix`, sorted; temporary files of writes in progress are not listed.

        Raises:
            StoreError: the directory cannot be read.
        """
        name = prefix.strip("/")
        folder = self.root / name
        try:
            keys = sorted(f"{name}/{p.name}" for p in folder.iterdir())
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"cannot list {folder}: {exc.strerror}") from exc
        return [k for k in keys if _KEY.fullmatch(k)]

    def delete(self, key: str) -> None:
        """Unlink root/key and sync its directory, so the removal survives a crash.

        Raises:
            StoreError: it cannot be removed.
        """
        _check_key(key)
        target = self.root / key
        try:
            target.unlink(missing_ok=True)
            if target.parent.is_dir():
                fsync_dir(target.parent)
        except OSError as exc:
            raise StoreError(
                f"cannot remove {key} from {self.root}: {exc.strerror}; check the directory's "
                "permissions"
            ) from exc

    def remove_stale_temporaries(self) -> int:
        """Delete temporary files a crashed writer left; returns how many.

        Only safe while no other writer uses the store (the collector holds
        DATA's lock when it calls this at start-up).
        """
        removed = 0
        for folder in ("bundles", "heads", "erased"):
            with contextlib.suppress(FileNotFoundError):
                for p in (self.root / folder).iterdir():
                    if p.name.startswith(".") and p.name.endswith(_TMP_SUFFIX):
                        p.unlink(missing_ok=True)
                        removed += 1
        if removed:
            log.warning("removed %d unfinished temporary file(s) in %s", removed, self.root)
        return removed


# -- S3 ------------------------------------------------------------------------------


class S3Store:
    """Objects in an S3 bucket under a prefix, through boto3.

    Credentials and region come from boto3's usual chain (environment, config
    files, instance roles); `endpoint_url` (or AWS_ENDPOINT_URL) points it at
    MinIO, Ceph or another S3-compatible server.
    """

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None) -> None:
        # Imported here: boto3 takes a good fraction of a second to import; only S3 users pay.
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.client: S3Client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=64),
        )

    def describe(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    def check(self) -> None:
        """Check that the bucket exists and can be reached.

        Raises:
            UsageError: the bucket does not exist, is not accessible, or the
                endpoint cannot be reached.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "?")
            raise UsageError(
                f"cannot use {self.describe()}: the bucket answered {code}; create the bucket "
                "or check the credentials and --s3-endpoint"
            ) from exc
        except BotoCoreError as exc:
            raise UsageError(
                f"cannot reach {self.describe()} ({type(exc).__name__}); check --s3-endpoint "
                "and the network"
            ) from exc

    def put(self, key: str, data: bytes | bytearray, *, durable: bool = True) -> None:
        """Upload `data` as one object; S3 never shows a partial one, and is always durable.

        The SHA-256 checksum travels with the body, so a body cut short or
        damaged on the way is refused by the server instead of stored.

        Raises:
            StoreError: the server refused or could not be reached.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        _check_key(key)
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
        try:
            # botocore takes a bytearray body as it is (its stubs say bytes only):
            # converting would hold a received bundle twice.
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.prefix + key,
                Body=cast(bytes, data),
                ChecksumSHA256=checksum,
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "?")
            raise StoreError(
                f"cannot store {key} in {self.describe()}: the server answered {code}"
            ) from exc
        except BotoCoreError as exc:
            raise StoreError(
                f"cannot store {key} in {self.describe()} ({type(exc).__name__}); "
                "check that the storage server is up"
            ) from exc

    def get(self, key: str) -> bytes:
        """The object's bytes.

        Raises:
            StoreError: no such object, or the server failed.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        _check_key(key)
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "?")
            raise StoreError(f"cannot read {key} from {self.describe()}: {code}") from exc
        except BotoCoreError as exc:
            raise StoreError(
                f"cannot read {key} from {self.describe()} ({type(exc).__name__})"
            ) from exc

    def delete(self, key: str) -> None:
        """Delete the object (S3 answers success for one already gone).

        Raises:
            StoreError: the server refused or could not be reached.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        _check_key(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"cannot remove {key} from {self.describe()}") from exc

    def list(self, prefix: str) -> list[str]:
        """Keys under `prefix` (without the store's own prefix), sorted.

        Raises:
            StoreError: the server failed.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        folder = prefix.strip("/") + "/"
        keys: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + folder
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    key = obj.get("Key", "")[len(self.prefix) :]
                    if _KEY.fullmatch(key):
                        keys.append(key)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"cannot list {folder} in {self.describe()}") from exc
        return sorted(keys)


def open_store(location: str, *, endpoint_url: str | None = None) -> DirStore | S3Store:
    """A directory path, or s3://bucket[/prefix] (endpoint: `endpoint_url`, else AWS_ENDPOINT_URL).

    Raises:
        UsageError: a malformed s3:// location.
    """
    if location.startswith("s3://"):
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
            raise UsageError(
                f"'{location}' does not name an S3 bucket; write it as s3://BUCKET/PREFIX"
            )
        return S3Store(bucket, prefix, endpoint_url=endpoint_url)
    if "://" in location:
        raise UsageError(f"'{location}' is neither a directory nor an s3:// location")
    return DirStore(Path(location).expanduser())
