"""The collector's error answers, and the checks of a request that give them.

An error is raised as a `Refusal` anywhere in a handler and rendered in one
place as JSON {"error": one line, "reason": short id}; no message carries a
token, a key or anything from a bundle's body.
"""

from __future__ import annotations

import json
import re
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cleartrace.errors import DiskFull, NotAdmitted, StoreError
from cleartrace.formats import canonical, unb64url, verify_ed25519

__all__ = [
    "HEX64",
    "Refusal",
    "check_enrolment",
    "declared_length",
    "http_error",
    "not_admitted",
    "store_failure",
    "too_large",
    "too_slow",
    "too_slow_rate",
]

HEX64 = re.compile(r"[0-9a-f]{64}")
_ENROLL_FIELDS = frozenset({"token", "device_public_key", "policy_sha256", "signature"})


class Refusal(Exception):
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

    def response(self, *, close: bool = False) -> JSONResponse:
        """The answer; `close` ends the connection (a body was left unread)."""
        body = {"error": self.message, "reason": self.reason, **self.extra}
        response = JSONResponse(body, status_code=self.status, headers=self.headers)
        if close:
            response.headers["connection"] = "close"
        return response


def check_enrolment(raw: bytes | bytearray) -> tuple[bytes, str, str | None]:
    """(device public key, token, policy sha256) of a well-formed, self-signed request."""
    try:
        obj = json.loads(raw)
        if not isinstance(obj, dict) or set(obj) != _ENROLL_FIELDS:
            raise ValueError("fields")
        token, policy_sha256 = obj["token"], obj["policy_sha256"]
        if not isinstance(token, str) or not 1 <= len(token) <= 256:
            raise ValueError("token")
        if policy_sha256 is not None and not (
            isinstance(policy_sha256, str) and HEX64.fullmatch(policy_sha256)
        ):
            raise ValueError("policy_sha256")
        public_raw = unb64url(obj["device_public_key"])
        signature = unb64url(obj["signature"])
        public_key = Ed25519PublicKey.from_public_bytes(public_raw)
        signed = canonical({k: v for k, v in obj.items() if k != "signature"})
    except (ValueError, TypeError, RecursionError):  # decoding and canonical JSON raise ValueError
        raise Refusal(
            400,
            "malformed",
            "an enrolment request is JSON {token, device_public_key, policy_sha256, signature}",
        ) from None
    if not verify_ed25519(public_key, signature, signed):
        raise Refusal(
            401, "bad-signature", "the enrolment request is not signed by the key it presents"
        )
    return public_raw, token, policy_sha256


def declared_length(request: Request, limit: int) -> int:
    """The bytes to hold for a bundle: its Content-Length, or `limit` when it states none."""
    declared = request.headers.get("content-length")
    if declared is None:
        return limit
    if not declared.isdigit():
        raise Refusal(400, "bad-length", "Content-Length is not a number")
    if int(declared) > limit:
        raise too_large(limit)
    return int(declared)


def not_admitted(exc: NotAdmitted) -> Refusal:
    seconds = exc.retry_after
    status, message = {
        "rate-limited": (429, "too many enrolment attempts from this address or in all"),
        "upload-in-progress": (429, "this device is already sending a bundle"),
        "busy": (503, "the collector holds as many bundles at once as it may"),
    }[exc.reason]
    return Refusal(
        status,
        exc.reason,
        f"{message}; try again in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


def too_slow(timeout: float, reason: str = "body-timeout") -> Refusal:
    """408: the body ("body-timeout") or its bundle header ("header-timeout") was late."""
    what, option = {
        "body-timeout": ("the body", "--body-timeout"),
        "header-timeout": ("the bundle header", "--header-timeout"),
    }[reason]
    return Refusal(
        408,
        reason,
        f"{what} did not arrive within {timeout:g} s; send it again, or ask the "
        f"organisation to raise {option}",
    )


def too_slow_rate(min_rate: float) -> Refusal:
    """408: the body arrived slower than the minimum rate (bytes a second)."""
    return Refusal(
        408,
        "body-too-slow",
        f"the body arrived slower than {min_rate / 1024:g} KiB/s; send it again over a "
        "faster link, or ask the organisation to lower --min-body-rate",
    )


def too_large(limit: int) -> Refusal:
    return Refusal(
        413,
        "too-large",
        f"the body is larger than this collector accepts ({limit} bytes); "
        "ask the organisation to raise --max-bundle-mb",
    )


def store_failure(exc: StoreError) -> Refusal:
    """A storage failure: the client should keep its bundle and retry later."""
    if isinstance(exc, DiskFull):
        return Refusal(
            507,
            "disk-full",
            "the collector's storage is full; the bundle was not stored, try again later",
            headers={"Retry-After": "300"},
        )
    return Refusal(
        503,
        "store-unavailable",
        "the collector cannot store right now; the bundle was not stored, try again later",
        headers={"Retry-After": "30"},
    )


async def http_error(request: Request, exc: Exception) -> Response:
    """Routing errors (404, 405) as JSON, like every other answer."""
    assert isinstance(exc, HTTPException)
    reason = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    headers = dict(exc.headers) if exc.headers else None
    return Refusal(exc.status_code, reason, str(exc.detail), headers=headers).response()
