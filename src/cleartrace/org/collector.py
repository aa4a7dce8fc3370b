"""The collector's HTTP protocol, as a Starlette ASGI app (served by `org.serve`).

Why Starlette on uvicorn: uvicorn is the reference ASGI server (TLS, graceful
shutdown, uvloop, bounded request heads with h11), Starlette the small, typed
toolkit on top (routing, streamed request bodies); both are widely deployed
and maintained by the encode team. A streamed body is what lets the
collector refuse an oversize upload before holding it, which a plain
`http.server` or a WSGI framework would make us build ourselves.

Routes (docs/cli.md, "cleartrace org serve", has the client's view)::

    POST /v1/enroll                        single-use token + signed device key -> subject
    GET  /v1/policy                        the signed policy the collector was started with
    GET  /v1/devices/{device_hex}/head     the witnessed ledger head of a device
    PUT  /v1/bundles/{sha256_hex}          store a bundle (idempotent)

A bundle is checked in order of cost: its declared size; then the request's
signature (`upload.upload_auth`: an enrolled device's key, this bundle's name,
a time within five minutes), before any body is read or reserved for
(`org.intake` bounds the bodies held at once); then, from its first bytes, by
a short deadline, the header's shape and that it names the signing device;
then the whole body arrives, before a deadline and at a minimum rate, and
hash, replay (a stored name is acknowledged again), signature and rate are
checked; then, under the device's lock, the witnessed head, and
only then is it stored. Hashing, the signature, SQLite and fsync run on
worker threads, so the event loop keeps receiving other uploads meanwhile.
Errors are `org.answers.Refusal`s, rendered as JSON with a one-line reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cleartrace.consent.signed_policy import read_signed_policy
from cleartrace.errors import (
    BundleError,
    BundleSignatureInvalid,
    LedgerBroken,
    NotAdmitted,
    StoreError,
    TokenRefused,
)
from cleartrace.formats import canonical, rfc3339
from cleartrace.org.admission import Admission
from cleartrace.org.answers import (
    HEX64,
    Refusal,
    check_enrolment,
    declared_length,
    http_error,
    not_admitted,
    store_failure,
)
from cleartrace.org.blobstore import BlobStore, bundle_key, head_key
from cleartrace.org.intake import BodyBudget, EnrolmentRates
from cleartrace.org.limits import (
    DEFAULT_BODY_MEMORY_MB,
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_ENROLL_RATE,
    DEFAULT_ENROLL_RATE_TOTAL,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_BUNDLE_MB,
    DEFAULT_MIN_BODY_RATE_KIB,
    DEFAULT_RATE,
    Rate,
    TokenBucket,
)
from cleartrace.org.registry import Device, Head, Registry, StoredBundle
from cleartrace.org.witness import HEAD_VERSION, sign_head
from cleartrace.upload.bundle import (
    Bundle,
    parse_bundle,
    verify_signature,
)
from cleartrace.upload.upload_auth import AUTH_HEADER

__all__ = [
    "Collector",
    "ServedPolicy",
    "load_served_policy",
]

log = logging.getLogger(__name__)

#: An enrolment request is a few hundred bytes.
_MAX_ENROLL_BYTES = 16 * 1024
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
        body_memory_bytes: int = DEFAULT_BODY_MEMORY_MB * 2**20,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        min_body_rate: float = DEFAULT_MIN_BODY_RATE_KIB * 1024,
        enroll_rate: Rate = DEFAULT_ENROLL_RATE,
        enroll_rate_total: Rate = DEFAULT_ENROLL_RATE_TOTAL,
    ) -> None:
        self.registry = registry
        self.store = store
        self.max_bundle_bytes = max_bundle_bytes
        self.rate = rate
        self.body_timeout = body_timeout
        self._bodies = BodyBudget(body_memory_bytes)
        self._enrolments = EnrolmentRates(enroll_rate, enroll_rate_total, clock)
        self.policy = policy
        self._admission = Admission(
            registry,
            org_key=policy.org_key if policy is not None else None,
            body_timeout=body_timeout,
            header_timeout=header_timeout,
            min_body_rate=min_body_rate,
        )
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
            exception_handlers={HTTPException: http_error},
        )

    # -- enrolment and policy -----------------------------------------------------------

    async def _policy(self, request: Request) -> Response:
        if self.policy is None:
            return Refusal(
                404, "no-policy", "this collector serves no policy; ask the organisation for it"
            ).response()
        return Response(self.policy.raw, media_type="application/json")

    async def _enroll(self, request: Request) -> Response:
        body = self._admission.body(request)
        try:
            address = request.client.host if request.client is not None else "unknown"
            try:
                self._enrolments.take(address)
            except NotAdmitted as exc:
                raise not_admitted(exc) from None
            raw = await self._admission.read_body(body, request, _MAX_ENROLL_BYTES)
            public_key, token, policy_sha256 = check_enrolment(raw)
            try:
                self._enrolments.take_overall()
            except NotAdmitted as exc:
                raise not_admitted(exc) from None
            if self.policy is not None and policy_sha256 != self.policy.sha256:
                raise Refusal(
                    409,
                    "policy-mismatch",
                    "the device enrols with another policy than the one this collector "
                    "serves; fetch GET /v1/policy and enrol with it",
                    extra={"policy_sha256": self.policy.sha256},
                )
            try:
                device = await _off_loop(self.registry.enroll, token, public_key)
            except TokenRefused as exc:
                raise Refusal(401, "bad-token", str(exc)) from None
        except Refusal as refusal:
            log.info("enrolment refused: %s", refusal.reason)
            return refusal.response(close=not body.complete)
        except ClientDisconnect:
            return Response(status_code=400)
        except StoreError as exc:
            return store_failure(exc).response()
        finally:
            await body.close()
        log.info("enrolled device %s", device.hex[:16])
        return JSONResponse({"device": device.device, "subject": device.subject}, status_code=201)

    async def _head(self, request: Request) -> Response:
        device_hex = request.path_params["device_hex"]
        if not HEX64.fullmatch(device_hex):
            return Refusal(400, "bad-device", "a device is named by 64 hex digits").response()
        try:
            device = await _off_loop(self.registry.device, "sha256:" + device_hex)
        except StoreError as exc:
            return store_failure(exc).response()
        if device is None:
            return Refusal(404, "not-enrolled", "this device is not enrolled").response()
        return JSONResponse(device.head.as_json())

    # -- bundles --------------------------------------------------------------------------

    async def _put_bundle(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = self._admission.body(request)
        try:
            if not HEX64.fullmatch(name):
                raise Refusal(
                    400, "bad-name", "a bundle is named by its SHA-256: 64 lower-case hex digits"
                )
            size = declared_length(request, self.max_bundle_bytes)
            device = await _off_loop(
                self._admission.authenticate, request.headers.get(AUTH_HEADER), name
            )
            try:
                async with self._bodies.hold(device, size):
                    await self._admission.admit(body, size, device)
                    raw = await self._admission.read_body(body, request, size)
                    seen = await _off_loop(self._examine, raw, name)
                    if isinstance(seen, StoredBundle):
                        return await self._replayed(seen)
                    self._rate_limit(seen.device)
                    # One device's bundles are witnessed and stored one at a time, in order.
                    async with self._locks.setdefault(seen.device, asyncio.Lock()):
                        done = await _off_loop(self._witness_and_store, seen)
            except NotAdmitted as exc:
                raise not_admitted(exc) from None
            if isinstance(done, StoredBundle):
                return await self._replayed(done)
        except Refusal as refusal:
            log.info("bundle %s refused: %s", name[:16], refusal.reason)
            return refusal.response(close=not body.complete)
        except ClientDisconnect:
            return Response(status_code=400)
        except StoreError as exc:
            log.warning("bundle %s not stored: %s", name[:16], exc)
            return store_failure(exc).response()
        finally:
            await body.close()
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

    def _examine(self, raw: bytearray, name: str) -> Bundle | StoredBundle:
        """Check the hash, the shape, enrolment and signature (on a worker thread).

        Returns the stored bundle for a replay (same bytes: nothing more to check).
        """
        try:
            bundle = parse_bundle(raw)  # hashes the bytes once, for its name
        except BundleError as exc:
            if hashlib.sha256(raw).hexdigest() != name:
                raise _hash_mismatch() from None
            raise Refusal(400, exc.reason, str(exc)) from None
        if bundle.name != name:
            raise _hash_mismatch()
        stored = self.registry.stored(name)
        if stored is not None:
            return stored
        self._admission.check_sender(bundle.header)
        try:
            verify_signature(bundle)
        except BundleSignatureInvalid as exc:
            raise Refusal(401, exc.reason, str(exc)) from None
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
            raise Refusal(
                429,
                "rate-limited",
                f"too many uploads from this device; try again in {seconds} s",
                headers={"Retry-After": str(seconds)},
            )


@dataclass(frozen=True, slots=True)
class _Accepted:
    device: str
    head: Head


def _hash_mismatch() -> Refusal:
    return Refusal(
        400,
        "hash-mismatch",
        "the body's SHA-256 is not the name in the URL: the upload was damaged or cut "
        "short; send it again",
    )


def _head_mismatch(base: Head, witnessed: Head) -> Refusal:
    return Refusal(
        409,
        "head-mismatch",
        f"the bundle's ledger starts at record {base.seq}, but the collector witnessed this "
        f"device's ledger up to record {witnessed.seq}: a rewritten or truncated ledger, or "
        "a bundle built on a stale head",
        extra={"head": witnessed.as_json()},
    )
