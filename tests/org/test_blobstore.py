"""The blob stores: one contract, kept by the directory store and the S3 store alike."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from cleartrace.errors import DiskFull, StoreError, UsageError
from cleartrace.org.blobstore import (
    BlobStore,
    DirStore,
    S3Store,
    bundle_key,
    erased_key,
    head_key,
    open_store,
)
from tests.support.org_process import leftovers

A, B = "a" * 64, "b" * 64


@pytest.fixture(params=["dir", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "dir":
        return DirStore(tmp_path / "store")
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = request.getfixturevalue("bucket")
    s3 = open_store(f"s3://{bucket}/collector/v1", endpoint_url=endpoint)
    assert isinstance(s3, S3Store)
    s3.check()
    return s3


def test_put_then_get_and_list(store: BlobStore) -> None:
    assert store.list("bundles") == []
    store.put(bundle_key(B), b"second")
    store.put(bundle_key(A), b"first")
    store.put(head_key(A), b"{}")
    assert store.get(bundle_key(A)) == b"first"
    assert store.list("bundles") == [bundle_key(A), bundle_key(B)]
    assert store.list("heads/") == [head_key(A)]


def test_delete_removes_for_good_and_receipts_have_their_own_folder(store: BlobStore) -> None:
    store.put(bundle_key(A), b"gone")
    store.put(bundle_key(B), b"kept")
    store.put(erased_key("c" * 32), b"{}")
    store.delete(bundle_key(A))
    store.delete(bundle_key(A))  # already gone: nothing to do
    assert store.list("bundles/") == [bundle_key(B)]
    assert store.list("erased/") == [erased_key("c" * 32)]
    with pytest.raises(StoreError):
        store.get(bundle_key(A))
    with pytest.raises(ValueError, match="blob key"):
        store.delete("erased/../bundles/" + A)


def test_put_replaces_whole(store: BlobStore) -> None:
    store.put(head_key(A), b'{"seq": 1}' * 1000)
    store.put(head_key(A), b'{"seq": 2}')
    assert store.get(head_key(A)) == b'{"seq": 2}'


def test_a_missing_object_is_a_store_error(store: BlobStore) -> None:
    with pytest.raises(StoreError, match="bundles/"):
        store.get(bundle_key(A))


def test_keys_outside_the_layout_are_refused(store: BlobStore) -> None:
    for key in ("../escape.ctb", "bundles/../../x.ctb", "bundles/short.ctb", "other/" + A):
        with pytest.raises(ValueError, match="blob key"):
            store.put(key, b"x")


def test_the_directory_store_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = DirStore(tmp_path)
    store.put(bundle_key(A), os.urandom(100_000))
    assert leftovers(tmp_path) == []
    assert oct((tmp_path / bundle_key(A)).stat().st_mode & 0o777) == "0o600"


def test_stale_temporaries_of_a_crashed_writer_are_removed(tmp_path: Path) -> None:
    store = DirStore(tmp_path)
    store.put(bundle_key(A), b"kept")
    crashed = tmp_path / "bundles" / f".{B}.ctb.0123.tmp"
    crashed.write_bytes(b"half")
    assert store.list("bundles") == [bundle_key(A)]
    assert store.remove_stale_temporaries() == 1
    assert leftovers(tmp_path) == []
    assert store.get(bundle_key(A)) == b"kept"


def test_a_full_disk_is_a_clear_error_and_leaves_nothing(tiny_disk: Path) -> None:
    store = DirStore(tiny_disk)
    store.put(bundle_key(A), b"small")
    with pytest.raises(DiskFull, match="disk is full") as caught:
        store.put(bundle_key(B), os.urandom(2 * 2**20))
    assert "free some space" in str(caught.value)
    assert leftovers(tiny_disk) == []
    assert store.list("bundles") == [bundle_key(A)]
    store.put(bundle_key(B), b"fits again")
    assert store.get(bundle_key(B)) == b"fits again"


def test_an_s3_put_carries_the_sha256_so_a_short_body_is_refused(
    s3_endpoint: str, bucket: str
) -> None:
    store = S3Store(bucket, "p", endpoint_url=s3_endpoint)
    sent: list[Any] = []
    store.client.meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: sent.append(request.headers)
    )
    data = os.urandom(10_000)
    store.put(bundle_key(A), data)
    (headers,) = sent
    checksum = base64.b64encode(hashlib.sha256(data).digest())
    assert headers["x-amz-checksum-sha256"] in (checksum, checksum.decode())
    assert store.get(bundle_key(A)) == data


def test_an_s3_store_without_its_bucket_says_so(s3_endpoint: str) -> None:
    with pytest.raises(UsageError, match="create the bucket"):
        S3Store("no-such-bucket-here", endpoint_url=s3_endpoint).check()


@pytest.mark.parametrize("location", ["s3://", "s3://UPPER/x", "ftp://host/dir"])
def test_a_bad_location_is_a_usage_error(location: str) -> None:
    with pytest.raises(UsageError):
        open_store(location)
