"""Writes v-no-notice.json: an organisation policy signed before policies had a
`notice`, from fixed keys. Devices must keep verifying and installing it with
the same hash. Run from the repository root: python tests/vectors/policy/generate.py
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from cleartrace.consent.policy import DEFAULT_POLICY, Policy
from cleartrace.org.policy_signing import sign_policy
from cleartrace.suites import OrgPublicKey

SIGN_SEED = bytes(range(32))
BUNDLE_SEED = bytes(range(32, 64))


def main() -> None:
    org_key = OrgPublicKey.from_keys(
        x25519.X25519PrivateKey.from_private_bytes(BUNDLE_SEED).public_key(), None
    )
    data = {
        **DEFAULT_POLICY.as_dict(),
        "id": "vector-org-policy",
        "version": 1,
        "purpose": "Record how work is done to train AI models on real workflows.",
        "collector": "https://collector.example",
        "org_key": org_key.as_json(),
    }
    policy = Policy.from_dict(data)
    signed = sign_policy(policy, ed25519.Ed25519PrivateKey.from_private_bytes(SIGN_SEED))
    (Path(__file__).parent / "v-no-notice.json").write_bytes(signed.raw)


if __name__ == "__main__":
    main()
