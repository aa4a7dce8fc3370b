"""Enrolment: this device registers its key with the organisation's collector.

The organisation hands out a signed policy and a single-use token. The device
verifies the policy, proves it holds its Ed25519 key by signing the request,
and only when the collector accepts does it install the policy and remember
the collector, its device id and the pseudonymous subject id the collector
assigned. From then on bundles are sealed to the policy's `org_key`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from cleartrace.consent.signed_policy import SignedPolicy, check_installable, install_policy
from cleartrace.errors import HomeError, UploadError, UsageError
from cleartrace.formats import b64url, rfc3339, sign_canonical
from cleartrace.home import Home
from cleartrace.paths import Paths, write_private

__all__ = ["Enrolment", "enrol", "load_enrolment"]

_FILE = "enrolment.json"


@dataclass(frozen=True, slots=True)
class Enrolment:
    """Where this device uploads to and under which ids (no secrets)."""

    collector: str
    device: str
    subject: str
    policy_sha256: str
    enrolled_at: str
    #: Fingerprints pinned at enrolment: the organisation's policy-signing key
    #: and the key bundles are sealed to.
    signer: str
    org_key: str

    @property
    def device_hex(self) -> str:
        return self.device.removeprefix("sha256:")

    @property
    def enrolled_ns(self) -> int:
        """When the device enrolled, in wall-clock ns."""
        when = datetime.fromisoformat(self.enrolled_at.replace("Z", "+00:00"))
        return int(when.timestamp() * 1e6) * 1000

    def check_policy(self, signed: SignedPolicy) -> None:
        """Refuse to upload under a policy other than the organisation's.

        The installed policy pins its own signer only; a policy file swapped
        in the home (signed by anyone, naming another key) would otherwise
        seal bundles to that key.

        Raises:
            UploadError: signed by another key, or naming another bundle key,
                than at enrolment.
        """
        org_key = signed.policy.org_key
        if signed.fingerprint != self.signer or (
            org_key is None or org_key.fingerprint != self.org_key
        ):
            raise UploadError(
                "the installed policy is not the one this device enrolled with (another "
                "signer or organisation key); nothing is uploaded: enrol again with your "
                "organisation's policy"
            )

    def may_upload(self, started_ns: int) -> bool:
        """Whether a session that started then may leave: only sessions recorded
        after enrolment. Earlier ones were recorded under terms that said
        nothing leaves this computer, and stay here."""
        return started_ns >= self.enrolled_ns


def load_enrolment(paths: Paths) -> Enrolment | None:
    """This device's enrolment, or None before `cleartrace enroll`.

    Raises:
        HomeError: the enrolment file is damaged.
    """
    path = paths.home / _FILE
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        return Enrolment(**obj)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        raise HomeError(
            f"{path} is damaged; enrol again with 'cleartrace enroll' (nothing else is lost)"
        ) from None


def enrol(
    home: Home, collector: str, signed: SignedPolicy, token: str, *, insecure_http: bool = False
) -> Enrolment:
    """Register this device with `collector` and install `signed` as its policy.

    Raises:
        UsageError: the policy names no organisation key, or another collector;
            plain http:// to another machine without `insecure_http`.
        PolicyRefused: the policy cannot replace the installed one.
        UploadError: the collector is unreachable or refused (a used token, a
            policy other than the one it serves); nothing was changed here.
    """
    # Here, not at the top: reading an enrolment (status, the tray) needs no HTTP client.
    from cleartrace.upload.client import CollectorClient, check_transport

    check_transport(collector, insecure_http=insecure_http)
    policy = signed.policy
    if policy.org_key is None:
        raise UsageError(
            "this policy names no organisation key, so nothing could be uploaded under it; "
            "ask for a policy made with 'cleartrace org policy init'"
        )
    if policy.collector is not None and policy.collector.rstrip("/") != collector.rstrip("/"):
        raise UsageError(
            f"the policy names the collector {policy.collector}, not {collector}; "
            "use the collector your organisation's policy names"
        )
    # Before the collector hears of us (and the token is spent): a device follows
    # one organisation, and never goes back to an older policy.
    check_installable(home.paths, signed)
    request: dict[str, Any] = {
        "token": token,
        "device_public_key": b64url(home.ledger.public_key.public_bytes_raw()),
        "policy_sha256": policy.sha256,
    }
    request["signature"] = sign_canonical(home.keys.device, request)
    client = CollectorClient(collector)
    try:
        answer = client.enroll(request)
    finally:
        client.close()
    subject = answer.get("subject")
    if answer.get("device") != home.ledger.device or not (
        isinstance(subject, str) and len(subject) == 32
    ):
        raise UploadError("the collector's enrolment answer does not match this device")
    install_policy(home.paths, signed)
    # Also what makes a running recorder take up the new policy (and ask
    # for consent under it) at its next tick.
    home.ledger.append("device.enrolled", policy=policy.reference())
    earlier = load_enrolment(home.paths)
    enrolment = Enrolment(
        collector=collector.rstrip("/"),
        device=home.ledger.device,
        subject=subject,
        policy_sha256=policy.sha256,
        # Enrolling again (a new token, a moved collector) does not hold back
        # what was recorded since the first enrolment.
        enrolled_at=rfc3339(datetime.now(UTC)) if earlier is None else earlier.enrolled_at,
        signer=signed.fingerprint,
        org_key=policy.org_key.fingerprint,
    )
    with write_private(home.paths.home / _FILE, "enrolment") as fh:
        json.dump(asdict(enrolment), fh, indent=2, sort_keys=True)
    return enrolment
