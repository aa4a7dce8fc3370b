"""What a Ray task of ingest returns, sealed to a key pair its driver holds.

A task's result is built from decrypted events (rows, ledger segments) and
travels through Ray's object store, which Ray may spill to files under its
temp dir: a directory every user may list, outside the dataset's 0700 tree
and out of reach of erasure. So a task never returns plaintext: the driver
makes a key pair for the run (`ResultKey.new`, in memory only, gone when the
run ends), only its public half (`ResultSeal`) goes to the tasks, each task
seals its pickled result to it with the project's HPKE suite (the hybrid
ML-KEM-768 + X25519 one bundles use, cleartrace.suites), and the driver
opens it. A spill, a copy left in shared memory or a core dump of a worker
then holds ciphertext whose key never left the driver's memory.

Each result is bound to the task it answers (`label`, the HPKE info): one
task's result cannot stand in for another's.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag

from cleartrace.org.keys import BundleKeys, new_pair
from cleartrace.suites import OrgPublicKey, suite

__all__ = ["ResultKey", "ResultSeal"]

_INFO = b"cleartrace ray task result\0"


@dataclass(frozen=True)
class ResultSeal:
    """The run's public key as a task gets it (its JSON form: key objects do
    not pickle), with which the task seals what it returns."""

    public: dict[str, Any]
    _key: list[OrgPublicKey] = field(default_factory=list, repr=False, compare=False)

    def seal(self, value: object, label: str) -> bytes:
        """`value`, pickled and sealed to the run's key for the task `label`."""
        if not self._key:  # parsed once per worker process and run
            self._key.append(OrgPublicKey.from_json(self.public))
        key = self._key[0]
        plaintext = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        return suite(key.suite).encrypt(plaintext, key.hpke_key, info=_INFO + label.encode())

    def __reduce__(self) -> tuple[Any, ...]:
        return (ResultSeal, (self.public,))


@dataclass(frozen=True)
class ResultKey:
    """A run's key pair: the private half stays in the driver's memory."""

    pair: BundleKeys = field(repr=False)

    @classmethod
    def new(cls) -> ResultKey:
        return cls(new_pair())

    @property
    def public(self) -> ResultSeal:
        return ResultSeal(self.pair.bundle_public.as_json())

    def open(self, sealed: bytes, label: str) -> Any:
        """What the task `label` returned.

        Raises:
            ValueError: not sealed to this run's key for that task (another
                run's, another task's, or changed on the way).
        """
        name = self.pair.bundle_public.suite
        try:
            plaintext = suite(name).decrypt(
                sealed, self.pair.bundle_private, info=_INFO + label.encode()
            )
        except (InvalidTag, ValueError):
            raise ValueError(
                f"a Ray task's result for {label[:40]} does not open with this run's key "
                "(another run's, or changed on the way); run ingest again"
            ) from None
        # Sealed by a task of this run to a key only this process holds: its own pickle.
        return pickle.loads(plaintext)  # noqa: S301
