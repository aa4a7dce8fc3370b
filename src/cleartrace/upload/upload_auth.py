"""The signature a device puts on an upload request, checked before its body is read.

A bundle's own signature covers all of its bytes, so it can be checked only
once the whole body has arrived; its header, at the body's start, is not
signed on its own and can be copied from any bundle of the device. So the
request itself is signed: `X-ClearTrace-Auth: device=<hex>,t=<unix>,sig=<b64url>`,
an Ed25519 signature with the device key (the one enrolled) over

    cleartrace-upload-v1 LF <METHOD> LF <bundle name> LF <device> LF <t>

The collector checks it against the enrolled key before it holds any body:
someone who copied a header (or a whole request) cannot make the collector
reserve memory or the device's upload slot for another bundle, nor, after
`MAX_CLOCK_SKEW` seconds, for the same one. The first line keeps these
signatures apart from the device key's others (canonical JSON ledger records
and enrolment requests, bundles starting with their magic bytes).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.formats import b64url, key_fingerprint, unb64url, verify_ed25519

__all__ = ["AUTH_HEADER", "MAX_CLOCK_SKEW", "UploadAuth", "sign_upload"]

AUTH_HEADER = "X-ClearTrace-Auth"
#: How far a request's time may be from the collector's clock, either way, in seconds.
MAX_CLOCK_SKEW = 300
_DOMAIN = b"cleartrace-upload-v1"
_FORM = re.compile(r"device=([0-9a-f]{64}),t=([0-9]{1,12}),sig=([A-Za-z0-9_-]{86})")


def _signed(method: str, name: str, device_hex: str, when: int) -> bytes:
    return b"\n".join(
        [_DOMAIN, method.encode(), name.encode(), device_hex.encode(), str(when).encode()]
    )


def sign_upload(key: Ed25519PrivateKey, method: str, name: str, now: float | None = None) -> str:
    """The X-ClearTrace-Auth value for `method` on bundle `name`, signed with the device key."""
    device_hex = key_fingerprint(key.public_key().public_bytes_raw()).removeprefix("sha256:")
    when = int(time.time() if now is None else now)
    signature = key.sign(_signed(method, name, device_hex, when))
    return f"device={device_hex},t={when},sig={b64url(signature)}"


@dataclass(frozen=True, slots=True)
class UploadAuth:
    """A parsed X-ClearTrace-Auth value: who claims to send, when, and the signature."""

    device_hex: str
    when: int
    signature: bytes

    @classmethod
    def parse(cls, value: str | None) -> UploadAuth:
        """Raises:
        ValueError: absent or not of the form device=<hex>,t=<unix>,sig=<b64url>.
        """
        match = _FORM.fullmatch(value or "")
        if match is None:
            raise ValueError("not an upload signature")
        return cls(match[1], int(match[2]), unb64url(match[3]))

    def skew(self, now: float) -> float:
        """Seconds between the request's time and `now` (positive: the device is ahead)."""
        return self.when - now

    def signed_by(self, public_key: bytes, method: str, name: str) -> bool:
        """Whether this is `public_key`'s signature for this method and bundle."""
        return verify_ed25519(
            public_key, self.signature, _signed(method, name, self.device_hex, self.when)
        )
