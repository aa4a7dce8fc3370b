"""The collector's HTTP protocol, as a Starlette ASGI app (served by `org.serve`).

Why Starlette on uvicorn: uvicorn is the reference ASGI server (TLS, graceful
shutdown, uvloop and the httptools C parser), Starlette the small, typed
toolkit on top (routing, streamed request bodies); both are widely deployed
and maintained by the encode team. A streamed body is what lets the
collector refuse an oversize upload before holding it, which a plain
`http.server` or a WSGI framework would make us build ourselves.

Routes (docs/cli.md, "cleartrace org serve", has the client's view)::

    POST /v1/enroll                        single-use token + signed device key -> subject
    GET  /v1/policy                        the signed policy the collector was started with
    GET  /v1/devices/{device_hex}/head     the witnessed ledger head of a device
    PUT  /v1/bundles/{sha256_hex}          store a bundle (idempotent)

A bundle is checked in order of cost: size, then hash and shape, replay (a
stored name is acknowledged again), enrolment, signature and rate; then, under
the device's lock, the witnessed head, and only then stored. Hashing, the
signature, SQLite and fsync run on worker threads, so the event loop keeps
receiving other uploads meanwhile. Errors are JSON {"error": one line, "reason": short id}; no
message carries a token, a key or anything from a bundle's body.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cleartrace.consent.records import canonical, rfc3339, unb64url
from cleartrace.consent.signed_policy import read_signed_policy
from cleartrace.errors import (
    BundleError,
    BundleSignatureInvalid,
    DiskFull,
    LedgerBroken,
    StoreError,
)
from cleartrace.org.blobstore import BlobStore, bundle_key, head_key
from cleartrace.org.limits import DEFAULT_MAX_BUNDLE_MB, DEFAULT_RATE, Rate, TokenBucket
from cleartrace.org.registry import Device, Head, Registry, StoredBundle, TokenRefused
from cleartrace.org.witness import HEAD_VERSION, sign_head
from cleartrace.upload.bundle import Bundle, parse_bundle, verify_signature

__all__ = [
    "Collector",
    "ServedPolicy",
    "load_served_policy",
]

log = logging.getLogger(__name__)

#: An enrolment request is a few hundred bytes.
_MAX_ENROLL_BYTES = 16 * 1024
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ENROLL_FIELDS = frozenset({"token", "device_public_key", "policy_sha256", "signature"})
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ServedPolicy:
    """The signed policy file the collector hands to enrolling devices."""

    raw: bytes
    sha256: str
    #: Fingerprint of the organisation key bundles must be sealed to (None: any).
    org_key: str | None = None


def load_served_policy(raw: bytes, source: str = "the policy file") -> ServedPolicy:
    """Verify a signed policy file and compute the SHA-256 devices must enrol with.

    The SHA-256 is over RFC 8785 canonical JSON of the file's "policy" object,
    as consent records and enrolment requests name a policy. The file is
    verified as a device would (against the signer it names), so a damaged
    or unsigned file is refused here rather than by every device.

    Raises:
        PolicyRefused: not a signed policy file, altered, or not a valid policy.
    """
    signed = read_signed_policy(
        raw, source=source, fix="write it with 'cleartrace org policy init' or 'policy sign'"
    )
    org_key = signed.policy.org_key
    return ServedPolicy(
        raw=raw,
        sha256=signed.policy.sha256,
        org_key=None if org_key is None else org_key.fingerprint,
    )


class _Refusal(Exception):
    """An HTTP error answer, raised inside a handler and rendered in one place."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.extra = extra or {}
        self.headers = headers

    def response(self) -> JSONResponse:
        body = {"error": self.message, "reason": self.reason, **self.extra}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


async def _off_loop(func: Callable[..., _T], *args: Any) -> _T:
    """Run blocking work (hashing, signatures, SQLite, fsync) on a worker thread."""
    return await run_in_threadpool(func, *args)


class Collector:
    """The collector's state (registry, store, limits, locks) and its ASGI app (`.app`)."""

    def __init__(
        self,
        registry: Registry,
        store: BlobStore,
        *,
        max_bundle_bytes: int = DEFAULT_MAX_BUNDLE_MB * 2**20,
        rate: Rate = DEFAULT_RATE,
        policy: ServedPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        witness: Ed25519PrivateKey | None = None,
    ) -> None:
        self.registry = registry
        self.store = store
        self.max_bundle_bytes = max_bundle_bytes
        self.rate = rate
        self.policy = policy
        self._clock = clock
        #: Signs the head files (org/witness.py); None writes them unsigned.
        self.witness = witness
        self._buckets: dict[str, TokenBucket] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._head_locks: dict[str, threading.Lock] = {}
        self.app = Starlette(
            routes=[
                Route("/v1/enroll", self._enroll, methods=["POST"]),
                Route("/v1/policy", self._policy, methods=["GET"]),
                Route("/v1/devices/{device_hex}/head", self._head, methods=["GET"]),
                Route("/v1/bundles/{name}", self._put_bundle, methods=["PUT"]),
            ],
            exception_handlers={HTTPException: _http_error},
        )

    # -- enrolment and policy -----------------------------------------------------------

    async def _policy(self, request: Request) -> Response:
        if self.policy is None:
            return _Refusal(
                404, "no-policy", "this collector serves no policy; ask the organisation for it"
            ).response()
        return Response(self.policy.raw, media_type="application/json")

    async def _enroll(self, request: Request) -> Response:
        try:
            raw = await self._read_body(request, _MAX_ENROLL_BYTES)
            public_key, token, policy_sha256 = _check_enrolment(raw)
            if self.policy is not None and policy_sha256 != self.policy.sha256:
                raise _Refusal(
                    409,
                    "policy-mismatch",
                    "the device enrols with another policy than the one this collector "
                    "serves; fetch GET /v1/policy and enrol with it",
                    extra={"policy_sha256": self.policy.sha256},
                )
            try:
                device = await _off_loop(self.registry.enroll, token, public_key)
            except TokenRefused as exc:
                raise _Refusal(401, "bad-token", str(exc)) from None
        except _Refusal as refusal:
            log.info("enrolment refused: %s", refusal.reason)
            return refusal.response()
        except ClientDisconnect:
            return Response(status_code=400)
        except StoreError as exc:
            return _store_failure(exc).response()
        log.info("enrolled device %s", device.hex[:16])
        return JSONResponse({"device": device.device, "subject": device.subject}, status_code=201)

    async def _head(self, request: Request) -> Response:
        device_hex = request.path_params["device_hex"]
        if not _HEX64.fullmatch(device_hex):
            return _Refusal(400, "bad-device", "a device is named by 64 hex digits").response()
        try:
            device = await _off_loop(self.registry.device, "sha256:" + device_hex)
        except StoreError as exc:
            return _store_failure(exc).response()
        if device is None:
            return _Refusal(404, "not-enrolled", "this device is not enrolled").response()
        return JSONResponse(device.head.as_json())

    # -- bundles --------------------------------------------------------------------------

    async def _put_bundle(self, request: Request) -> Response:
        name = request.path_params["name"]
        try:
            if not _HEX64.fullmatch(name):
                raise _Refusal(
                    400, "bad-name", "a bundle is named by its SHA-256: 64 lower-case hex digits"
                )
            raw = await self._read_body(request, self.max_bundle_bytes)
            seen = await _off_loop(self._examine, raw, name)
            if isinstance(seen, StoredBundle):
                return await self._replayed(seen)
            self._rate_limit(seen.device)
            # One device's bundles are witnessed and stored one at a time, in order.
            async with self._locks.setdefault(seen.device, asyncio.Lock()):
                done = await _off_loop(self._witness_and_store, seen)
            if isinstance(done, StoredBundle):
                return await self._replayed(done)
        except _Refusal as refusal:
            log.info("bundle %s refused: %s", name[:16], refusal.reason)
            return refusal.response()
        except ClientDisconnect:
            return Response(status_code=400)
        except StoreError as exc:
            log.warning("bundle %s not stored: %s", name[:16], exc)
            return _store_failure(exc).response()
        log.info(
            "accepted bundle %s from device %s: %d bytes, head %d",
            name[:16],
            done.device.removeprefix("sha256:")[:16],
            len(raw),
            done.head.seq,
        )
        return JSONResponse(
            {"bundle": name, "head": done.head.as_json(), "stored": True}, status_code=201
        )

    async def _read_body(self, request: Request, limit: int) -> bytes:
        """The whole body, refusing more than `limit` bytes.

        The declared length is checked before reading anything; the bytes are
        counted as they come, so a missing or false length does not help.
        """
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise _Refusal(400, "bad-length", "Content-Length is not a number")
            if int(declared) > limit:
                raise _too_large(limit)
        parts: list[bytes] = []
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise _too_large(limit)
            parts.append(chunk)
        return b"".join(parts)

    def _examine(self, raw: bytes, name: str) -> Bundle | StoredBundle:
        """Check the hash, the shape, enrolment and signature (on a worker thread).

        Returns the stored bundle for a replay (same bytes: nothing more to check).
        """
        try:
            bundle = parse_bundle(raw)  # hashes the bytes once, for its name
        except BundleError as exc:
            if hashlib.sha256(raw).hexdigest() != name:
                raise _hash_mismatch() from None
            raise _Refusal(400, exc.reason, str(exc)) from None
        if bundle.name != name:
            raise _hash_mismatch()
        stored = self.registry.stored(name)
        if stored is not None:
            return stored
        device = self.registry.device(bundle.device)
        if device is None:
            raise _Refusal(
                403,
                "not-enrolled",
                "the device that signed this bundle is not enrolled; enrol it with "
                "'cleartrace enroll' and a token from the organisation",
            )
        if device.public_key != bundle.device_public_key.public_bytes_raw():
            raise _Refusal(403, "key-mismatch", "the bundle's device key is not the enrolled one")
        served = self.policy.org_key if self.policy is not None else None
        if served is not None and bundle.header["org_key"] != served:
            raise _Refusal(
                403,
                "wrong-org-key",
                "the bundle is sealed to another organisation key than the policy this "
                "collector serves names; the device's policy was replaced, enrol it again",
            )
        if bundle.header["subject"] != device.subject:
            raise _Refusal(
                403,
                "subject-mismatch",
                "the bundle names another subject than the device enrolled with; enrol again",
            )
        try:
            verify_signature(bundle)
        except BundleSignatureInvalid as exc:
            raise _Refusal(401, exc.reason, str(exc)) from None
        return bundle

    def _witness_and_store(self, bundle: Bundle) -> StoredBundle | _Accepted:
        """Check the witnessed head, store, move the head (worker thread, device lock held).

        Bundle first, then the registry, then the head file: the head file is
        never ahead of collector.db, so every counter a head file carries was
        committed and none is handed out twice. A crash after the bundle leaves
        one the device sends again (accepted then); a crash after the commit, a
        head file behind the registry, which `rewrite_heads` puts right.
        """
        stored = self.registry.stored(bundle.name)  # raced in on another connection
        if stored is not None:
            return stored
        device = self.registry.device(bundle.device)
        assert device is not None  # checked in _examine; devices are never removed
        base, head = Head(*bundle.base), Head(*bundle.head)
        if base != device.head:
            raise _head_mismatch(base, device.head)
        when = rfc3339(datetime.now(UTC))
        self.store.put(bundle_key(bundle.name), bundle.raw)
        with self._head_lock(bundle.device):
            try:
                moved = self.registry.accept(
                    name=bundle.name,
                    device=bundle.device,
                    size=len(bundle.raw),
                    base=base,
                    head=head,
                    when=when,
                )
            except LedgerBroken:  # only if the registry was changed behind the lock's back
                current = self.registry.device(bundle.device)
                raise _head_mismatch(base, current.head if current else device.head) from None
            # The head file mirrors collector.db, which is the durable record (synced on
            # commit); `rewrite_heads` repairs a mirror a crash left behind, so the file
            # is not synced on its own (that would be the slowest part of a small upload).
            self.store.put(head_key(device.hex), self._head_doc(moved), durable=False)
        return _Accepted(device=bundle.device, head=head)

    async def _replayed(self, stored: StoredBundle) -> Response:
        known = await _off_loop(self.registry.device, stored.device)
        head = known.head.as_json() if known is not None else None
        return JSONResponse({"bundle": stored.name, "head": head, "stored": False})

    def _head_lock(self, device: str) -> threading.Lock:
        """Held (on a worker thread) while a device's head moves in the registry and
        its head file is written, so that file is never overwritten with an older head
        (dict.setdefault is atomic under the GIL: two threads get the same lock)."""
        return self._head_locks.setdefault(device, threading.Lock())

    def _head_doc(self, device: Device) -> bytes:
        """heads/<device>.json (docs/bundle-format.md): the witnessed head, the
        bundle that brought it, when, and the witness counter it was accepted
        under; signed with the witness key (Ed25519 is deterministic, so the
        same registry row always gives the same bytes)."""
        doc = {
            "v": HEAD_VERSION,
            "device": device.device,
            "seq": device.head.seq,
            "hash": device.head.hash,
            "bundle": device.head_bundle,
            "time": device.head_time,
            "counter": device.head_counter,
        }
        return canonical(doc) if self.witness is None else sign_head(doc, self.witness)

    def rewrite_heads(self, stop: Callable[[], bool] = lambda: False) -> int:
        """Make every heads/<device>.json match collector.db again; returns how many changed.

        Run at start-up, before serving (after a crash a head file may be
        behind or missing from what the registry holds), and then every
        `--recheck-heads` seconds while serving: a head file someone replaced
        in the store (an older one put back) is rewritten and logged, not left
        for ingest alone to notice. `stop()` true ends the pass before the next
        device (the collector shutting down). Each file is read and written under its
        device's head lock, from the registry's row as it is then, so an upload
        moving the same head meanwhile cannot be overwritten with an older one.

        Raises:
            StoreError: the store cannot be read or written.
        """
        changed: list[str] = []
        for listed in self.registry.devices():
            if stop():
                break
            with self._head_lock(listed.device):
                device = self.registry.device(listed.device)
                if device is None or device.head_bundle is None:
                    continue
                doc = self._head_doc(device)
                key = head_key(device.hex)
                try:
                    current: bytes | None = self.store.get(key)
                except StoreError:
                    current = None
                if current != doc:
                    self.store.put(key, doc)
                    changed.append(device.hex[:16])
        if changed:
            named = ", ".join(changed[:10]) + (", …" if len(changed) > 10 else "")
            log.warning(
                "rewrote %d head file(s) to match the registry (devices %s): a crash or an "
                "upgrade left them behind, or someone else changed the store",
                len(changed),
                named,
            )
        return len(changed)

    def _rate_limit(self, device: str) -> None:
        now = self._clock()
        bucket = self._buckets.get(device)
        if bucket is None:
            bucket = self._buckets[device] = TokenBucket(self.rate, now)
        wait = bucket.take(now)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise _Refusal(
                429,
                "rate-limited",
                f"too many uploads from this device; try again in {seconds} s",
                headers={"Retry-After": str(seconds)},
            )


@dataclass(frozen=True, slots=True)
class _Accepted:
    device: str
    head: Head


def _hash_mismatch() -> _Refusal:
    return _Refusal(
        400,
        "hash-mismatch",
        "the body's SHA-256 is not the name in the URL: the upload was damaged or cut "
        "short; send it again",
    )


def _head_mismatch(base: Head, witnessed: Head) -> _Refusal:
    return _Refusal(
        409,
        "head-mismatch",
        f"the bundle's ledger starts at record {base.seq}, but the collector witnessed this "
        f"device's ledger up to record {witnessed.seq}: a rewritten or truncated ledger, or "
        "a bundle built on a stale head",
        extra={"head": witnessed.as_json()},
    )


def _check_enrolment(raw: bytes) -> tuple[bytes, str, str | None]:
    """(device public key, token, policy sha256) of a well-formed, self-signed request."""
    try:
        obj = json.loads(raw)
        if not isinstance(obj, dict) or set(obj) != _ENROLL_FIELDS:
            raise ValueError("fields")
        token, policy_sha256 = obj["token"], obj["policy_sha256"]
        if not isinstance(token, str) or not 1 <= len(token) <= 256:
            raise ValueError("token")
        if policy_sha256 is not None and not (
            isinstance(policy_sha256, str) and _HEX64.fullmatch(policy_sha256)
        ):
            raise ValueError("policy_sha256")
        public_raw = unb64url(obj["device_public_key"])
        signature = unb64url(obj["signature"])
        public_key = Ed25519PublicKey.from_public_bytes(public_raw)
        signed = rfc8785.dumps({k: v for k, v in obj.items() if k != "signature"})
    except (ValueError, TypeError, UnicodeDecodeError, rfc8785.CanonicalizationError):
        raise _Refusal(
            400,
            "malformed",
            "an enrolment request is JSON {token, device_public_key, policy_sha256, signature}",
        ) from None
    try:
        public_key.verify(signature, signed)
    except InvalidSignature:
        raise _Refusal(
            401, "bad-signature", "the enrolment request is not signed by the key it presents"
        ) from None
    return public_raw, token, policy_sha256


def _too_large(limit: int) -> _Refusal:
    return _Refusal(
        413,
        "too-large",
        f"the body is larger than this collector accepts ({limit} bytes); "
        "ask the organisation to raise --max-bundle-mb",
    )


def _store_failure(exc: StoreError) -> _Refusal:
    """A storage failure: the client should keep its bundle and retry later."""
    if isinstance(exc, DiskFull):
        return _Refusal(
            507,
            "disk-full",
            "the collector's storage is full; the bundle was not stored, try again later",
            headers={"Retry-After": "300"},
        )
    return _Refusal(
        503,
        "store-unavailable",
        "the collector cannot store right now; the bundle was not stored, try again later",
        headers={"Retry-After": "30"},
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    """Routing errors (404, 405) as JSON, like every other answer."""
    assert isinstance(exc, HTTPException)
    reason = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    headers = dict(exc.headers) if exc.headers else None
    return _Refusal(exc.status_code, reason, str(exc.detail), headers=headers).response()
