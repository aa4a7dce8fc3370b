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
checked; then, under the device's head lock (the state's: across
processes when they share PostgreSQL), the witnessed head, and
only then is it stored (org/witnessing.py). Hashing, the signature, SQLite and fsync run on
worker threads, so the event loop keeps receiving other uploads meanwhile.
Errors are `org.answers.Refusal`s, rendered as JSON with a one-line reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
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
    NotAdmitted,
    StoreError,
    TokenRefused,
)
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
from cleartrace.org.blobstore import BlobStore
from cleartrace.org.devices import StoredBundle
from cleartrace.org.intake import BodyBudget, EnrolmentRates, address_block
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
)
from cleartrace.org.state import CollectorState
from cleartrace.org.witnessing import HeadWitness
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
        registry: CollectorState,
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
        self.body_timeout = body_timeout
        self._bodies = BodyBudget(body_memory_bytes)
        self._enrolments = EnrolmentRates(enroll_rate, enroll_rate_total, clock)
        self._enroll_rate, self._enroll_rate_total = enroll_rate, enroll_rate_total
        self.policy = policy
        self._admission = Admission(
            registry,
            org_key=policy.org_key if policy is not None else None,
            body_timeout=body_timeout,
            header_timeout=header_timeout,
            min_body_rate=min_body_rate,
        )
        self._rate = rate
        #: Stores bundles, moves witnessed heads and keeps the head files in step.
        self.heads = HeadWitness(registry, store, witness)
        self._locks: dict[str, asyncio.Lock] = {}
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
                await self._count_enrolment(address)
                raw = await self._admission.read_body(body, request, _MAX_ENROLL_BYTES)
                public_key, token, policy_sha256 = check_enrolment(raw)
                await self._count_enrolment(None)
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

    async def _count_enrolment(self, address: str | None) -> None:
        """Count an attempt from `address`'s network, or (None) against the overall rate.

        In this process's memory on the embedded state; in the shared state's
        buckets when processes share it, so N processes do not allow N times as many.

        Raises:
            NotAdmitted: "rate-limited", with the seconds until one would be allowed.
        """
        if not self.registry.shared:
            if address is None:
                self._enrolments.take_overall()
            else:
                self._enrolments.take(address)
            return
        key, rate = (
            ("enroll", self._enroll_rate_total)
            if address is None
            else ("enroll:" + address_block(address), self._enroll_rate)
        )
        wait = await _off_loop(self.registry.take, key, rate)
        if wait > 0:
            raise NotAdmitted("rate-limited", max(1, math.ceil(wait)))

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
                    # Counted in the state: across the fleet when processes share it.
                    wait = await _off_loop(self.registry.take, "upload:" + seen.device, self._rate)
                    if wait > 0:
                        raise _too_many_uploads(max(1, math.ceil(wait)))
                    # One device's bundles are witnessed and stored one at a time, in order:
                    # here within this process, and by the state's head lock across a fleet.
                    async with self._locks.setdefault(seen.device, asyncio.Lock()):
                        done = await _off_loop(self.heads.accept, seen)
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

    async def _replayed(self, stored: StoredBundle) -> Response:
        known = await _off_loop(self.registry.device, stored.device)
        head = known.head.as_json() if known is not None else None
        return JSONResponse({"bundle": stored.name, "head": head, "stored": False})


def _too_many_uploads(seconds: int) -> Refusal:
    return Refusal(
        429,
        "rate-limited",
        f"too many uploads from this device; try again in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


def _hash_mismatch() -> Refusal:
    return Refusal(
        400,
        "hash-mismatch",
        "the body's SHA-256 is not the name in the URL: the upload was damaged or cut "
        "short; send it again",
    )
