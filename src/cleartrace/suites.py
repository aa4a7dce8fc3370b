"""HPKE suites a bundle may be sealed with, and the organisation's public key.

Keystrokes are kept for years, so the default suite is the hybrid
post-quantum KEM (ML-KEM-768 + X25519): a recording harvested now stays
sealed even if X25519 falls to a future quantum computer, and stays sealed by
X25519 if ML-KEM turns out weak. Plain X25519 remains selectable by policy for
verifiers that lack ML-KEM. Both use HKDF-SHA256 and AES-256-GCM (RFC 9180).

This sits below every package, next to `formats`: a policy names the
organisation's key (`org_key`), so consent reads this format, and the upload
package that seals bundles builds on consent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from cleartrace.errors import UsageError
from cleartrace.formats import b64url, unb64url

__all__ = [
    "DEFAULT_SUITE",
    "HYBRID",
    "SUITES",
    "X25519",
    "OrgPublicKey",
    "PublicHpkeKey",
    "suite",
]

HYBRID = "mlkem768-x25519"
X25519 = "x25519"
DEFAULT_SUITE = HYBRID
SUITES = (HYBRID, X25519)
PUBLIC_TYPE = "cleartrace-org-bundle-public-key"

_KEM = {HYBRID: hpke.KEM.MLKEM768_X25519, X25519: hpke.KEM.X25519}
_MLKEM768_PUBLIC = 1184

PublicHpkeKey = hpke.MLKEM768X25519PublicKey | x25519.X25519PublicKey


def suite(name: str) -> hpke.Suite:
    """The HPKE suite called `name` ("mlkem768-x25519" or "x25519").

    Raises:
        UsageError: an unknown suite name.
    """
    kem = _KEM.get(name)
    if kem is None:
        raise UsageError(f"unknown HPKE suite '{name}'; use one of {', '.join(SUITES)}")
    return hpke.Suite(kem, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


def _fingerprint(suite_name: str, raw: bytes) -> str:
    # The suite name is hashed in, so one X25519 key used in both suites would
    # still get two fingerprints (and a header names exactly one of them).
    return "sha256:" + hashlib.sha256(suite_name.encode() + b"\0" + raw).hexdigest()


@dataclass(frozen=True)
class OrgPublicKey:
    """The organisation's bundle key as a device (and a policy) carries it.

    `raw` is the public key's bytes: the ML-KEM-768 encapsulation key followed
    by the X25519 key for the hybrid suite (the order of the hybrid KEM's own
    encoding), the X25519 key alone otherwise.
    """

    suite: str
    raw: bytes = field(repr=False)
    hpke_key: PublicHpkeKey = field(repr=False, compare=False)

    @property
    def fingerprint(self) -> str:
        return _fingerprint(self.suite, self.raw)

    @classmethod
    def from_keys(
        cls, x25519_key: x25519.X25519PublicKey, mlkem_key: mlkem.MLKEM768PublicKey | None
    ) -> OrgPublicKey:
        """The hybrid key when `mlkem_key` is given, else the X25519 one."""
        x_raw = x25519_key.public_bytes_raw()
        if mlkem_key is None:
            return cls(X25519, x_raw, x25519_key)
        return cls(
            HYBRID,
            mlkem_key.public_bytes_raw() + x_raw,
            hpke.MLKEM768X25519PublicKey(mlkem_key, x25519_key),
        )

    def as_json(self) -> dict[str, Any]:
        """The JSON object of `bundle.pub` and of a policy's `org_key`."""
        obj: dict[str, Any] = {
            "type": PUBLIC_TYPE,
            "suite": self.suite,
            "x25519": b64url(self.raw[-32:]),
            "fingerprint": self.fingerprint,
        }
        if self.suite == HYBRID:
            obj["mlkem768"] = b64url(self.raw[:_MLKEM768_PUBLIC])
        return obj

    @classmethod
    def from_json(cls, obj: object) -> OrgPublicKey:
        """Parse `as_json()` output, checking the fingerprint it states.

        Raises:
            UsageError: not such an object, a bad key, or a fingerprint that
                does not match the key (a copy-paste mix-up or tampering).
        """
        if not isinstance(obj, Mapping) or obj.get("type") != PUBLIC_TYPE:
            raise UsageError(
                "not an organisation bundle key (expected the content of bundle.pub "
                "from 'cleartrace org keygen')"
            )
        name = obj.get("suite")
        wanted = {"type", "suite", "x25519", "fingerprint"} | (
            {"mlkem768"} if name == HYBRID else set()
        )
        if name not in SUITES or set(obj) != wanted:
            raise UsageError(
                f"organisation key: suite must be one of {', '.join(SUITES)} "
                f"with exactly the fields {sorted(wanted)}"
            )
        try:
            x_key = x25519.X25519PublicKey.from_public_bytes(unb64url(obj["x25519"]))
            m_key = (
                mlkem.MLKEM768PublicKey.from_public_bytes(unb64url(obj["mlkem768"]))
                if name == HYBRID
                else None
            )
        except (ValueError, TypeError):
            raise UsageError("organisation key: a key field is not a valid public key") from None
        key = cls.from_keys(x_key, m_key)
        if obj["fingerprint"] != key.fingerprint:
            raise UsageError(
                "organisation key: the stated fingerprint does not match the key; "
                "copy bundle.pub again from the organisation"
            )
        return key
