"""The collector's HTTP API as the device uses it (see docs/bundle-format.md).

Every failure becomes an `UploadError` saying whether trying again can help
(`retryable`): a collector that is down, overloaded (5xx) or rate-limiting
(429) may accept later; a refusal (4xx) will not change by itself, nor will a
redirect (3xx), which is never followed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.errors import CollectorRefused, UploadError, UsageError
from cleartrace.upload.upload_auth import AUTH_HEADER, sign_upload

__all__ = ["Ack", "CollectorClient", "check_transport"]

log = logging.getLogger(__name__)

_TIMEOUT = (5.0, 60.0)  # connect, read: a large bundle over a slow link


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def check_transport(url: str, *, insecure_http: bool) -> None:
    """Plain http:// only to this machine (127.0.0.0/8, ::1, localhost).

    Over plain HTTP anyone on the path reads the enrolment token and the
    bundle headers (device, subject, times, counts) and can answer as the
    collector; the bundles stay sealed, but that is not enough to allow it
    by default. `insecure_http` allows it for a test setup.

    Raises:
        UsageError: a plain http:// URL naming another host, without `insecure_http`.
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or insecure_http:
        return
    if not _loopback(parts.hostname or ""):
        raise UsageError(
            f"the collector {url} is plain http:// to another machine: the enrolment token and "
            "bundle headers would cross the network unprotected; use its https:// address "
            "(REQUESTS_CA_BUNDLE=FILE for a private CA), or --insecure-http for a test setup"
        )


@dataclass(frozen=True)
class Ack:
    """The collector's answer to an accepted (or already stored) bundle."""

    bundle: str
    head: tuple[int, str]
    stored: bool


def _head(obj: object) -> tuple[int, str]:
    if not (
        isinstance(obj, dict)
        and type(obj.get("seq")) is int
        and isinstance(obj.get("hash"), str)
        and len(obj["hash"]) == 64
    ):
        raise UploadError("the collector sent a malformed ledger head; check its version")
    return int(obj["seq"]), str(obj["hash"])


class CollectorClient:
    """One collector, one `requests.Session` (kept-alive connections, TLS checked)."""

    def __init__(self, url: str, *, timeout: tuple[float, float] = _TIMEOUT) -> None:
        if not url.startswith(("http://", "https://")):
            raise UploadError(f"collector URL '{url}' must start with http:// or https://")
        self.url = url.rstrip("/")
        self._timeout = timeout
        self._http = requests.Session()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            # Never followed: a redirect would carry the enrolment token and the
            # bundle past check_transport, to whatever address the answer names.
            response = self._http.request(
                method, self.url + path, timeout=self._timeout, allow_redirects=False, **kwargs
            )
        except requests.exceptions.SSLError:
            raise UploadError(
                f"cannot verify the TLS certificate of {self.url}; give its CA with "
                "REQUESTS_CA_BUNDLE=FILE or fix the collector's certificate"
            ) from None
        except requests.RequestException as exc:
            raise UploadError(
                f"cannot reach the collector at {self.url} ({type(exc).__name__}); "
                "it may be down or the address wrong: try again later",
                retryable=True,
            ) from None
        if response.status_code >= 400:
            raise self._refused(response)
        if response.is_redirect or 300 <= response.status_code < 400:
            raise UploadError(
                f"the collector at {self.url} answered with a redirect "
                f"({response.status_code}); redirects are not followed, so that the enrolment "
                "token and bundles reach only the address you gave: use the collector's own "
                "address, or ask its administrator to stop redirecting"
            )
        return response

    def _refused(self, response: requests.Response) -> CollectorRefused:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        text = str(body.get("error") or response.reason or "refused")[:300]
        error = CollectorRefused(
            f"the collector refused ({response.status_code}): {text}",
            response.status_code,
            str(body.get("reason", "")),
            body,
        )
        retry_after = response.headers.get("Retry-After")
        if retry_after is not None:
            with contextlib.suppress(ValueError):
                error.retry_after = max(0.0, float(retry_after))
        return error

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """A call whose answer must be a JSON object (a proxy's HTML page is not)."""
        response = self._call(method, path, **kwargs)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise UploadError(
                f"{self.url} did not answer as a ClearTrace collector (no JSON); check the "
                "URL, or a proxy in between",
                retryable=True,
            )
        return answer

    def enroll(self, request_body: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/enroll; returns the collector's answer ({device, subject})."""
        return self._json("POST", "/v1/enroll", json=request_body)

    def head(self, device_hex: str) -> tuple[int, str]:
        """The ledger head the collector witnessed for this device."""
        return _head(self._json("GET", f"/v1/devices/{device_hex}/head"))

    def put_bundle(self, name: str, data: bytes, device_key: Ed25519PrivateKey) -> Ack:
        """PUT /v1/bundles/{name}: idempotent, so a retry after a lost answer is safe.

        The request is signed with the device key (`upload_auth`), signed anew
        for each attempt: the collector refuses a time more than five minutes
        off its clock ("clock-skew", a refusal that names the fix).
        """
        answer = self._json(
            "PUT",
            f"/v1/bundles/{name}",
            data=data,
            headers={
                "Content-Type": "application/octet-stream",
                AUTH_HEADER: sign_upload(device_key, "PUT", name),
            },
        )
        if answer.get("bundle") != name:
            raise UploadError(
                "the collector acknowledged another bundle than the one sent; "
                "the bundle stays queued"
            )
        return Ack(bundle=name, head=_head(answer.get("head")), stored=bool(answer.get("stored")))
