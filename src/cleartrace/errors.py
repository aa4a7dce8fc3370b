"""The one exception tree of ClearTrace.

Every message names the object concerned and the fix, never captured content
(typed text, window titles, key bytes)::

    ClearTraceError                 exit_code 2 unless stated
    ├── UsageError                  bad arguments or input file
    │   └── TokenRefused            an enrolment token is unknown or used already
    ├── HomeError                   the home directory is unsafe or unusable
    ├── KeyStorageError             a key is missing, unreadable or insecure
    ├── StoreError
    │   ├── WrongKey                the master key does not open this store
    │   ├── StoreCorrupt            the database file is damaged
    │   ├── DiskFull                no room to write
    │   └── UnknownSession          no session has that id
    ├── ConsentError
    │   ├── NoConsent               nothing to record without consent
    │   └── PolicyRefused           a policy file is unsigned, altered or from another signer
    ├── LedgerBroken                exit_code 1: verification found tampering
    ├── DisplayUnavailable          no X display, refused connection, Wayland
    ├── RecorderError
    │   └── RecorderNotRunning      no recorder owns the control socket
    ├── BundleError                 exit_code 1: a bundle is unusable (`reason` says why)
    │   ├── BundleInvalid           malformed or truncated
    │   ├── BundleSignatureInvalid  the device signature does not verify
    │   └── BundleNotForThisKey     sealed to another organisation key
    ├── UploadError                 the collector is down or refused; the bundle stays queued
    │   ├── CollectorRefused        the collector answered with an error (`status`, `reason`)
    │   └── UploadBusy              another process of this home is uploading now
    └── ClusterLost                 the Ray cluster ingest ran on was lost mid-run

Internal signals, not ClearTraceErrors: each is caught by one module, which
turns it into a user-facing error, an ingest rejection or an HTTP answer
(`cleartrace.org.answers.Refusal`, the collector's HTTP answer, renders
itself with Starlette and so lives there)::

    ValueError
    └── CodecError                  bytes are not an event batch; the store reports StoreCorrupt
    Exception
    ├── DeviceRefused               ingest: a device's bundles are refused (`reason`, `detail`)
    ├── BodyTooSlow                 collector: a request body missed a time limit (`rule`)
    └── NotAdmitted                 collector: no room for a request now (`reason`, `retry_after`)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BodyTooSlow",
    "BundleError",
    "BundleInvalid",
    "BundleNotForThisKey",
    "BundleSignatureInvalid",
    "ClearTraceError",
    "ClusterLost",
    "CodecError",
    "CollectorRefused",
    "ConsentError",
    "DeviceRefused",
    "DiskFull",
    "DisplayUnavailable",
    "HomeError",
    "KeyStorageError",
    "LedgerBroken",
    "NoConsent",
    "NotAdmitted",
    "PolicyRefused",
    "RecorderError",
    "RecorderNotRunning",
    "StoreCorrupt",
    "StoreError",
    "TokenRefused",
    "UnknownSession",
    "UploadBusy",
    "UploadError",
    "UsageError",
    "WrongKey",
]


class ClearTraceError(Exception):
    """Base of every error ClearTrace reports to a user."""

    exit_code = 2


class UsageError(ClearTraceError):
    """Bad arguments or bad input file."""


class TokenRefused(UsageError):
    """The enrolment token is unknown or was used already."""


class HomeError(ClearTraceError):
    """The home directory is unsafe (readable by others) or unusable."""


class KeyStorageError(ClearTraceError):
    """A key is missing, unreadable or stored insecurely."""


class StoreError(ClearTraceError):
    """The encrypted session store cannot be used."""


class WrongKey(StoreError):
    """The master key does not open this store."""


class StoreCorrupt(StoreError):
    """The database file or one of its chunks is damaged."""


class DiskFull(StoreError):
    """The disk (or the store's page quota) is full."""


class UnknownSession(StoreError):
    """No session has the given id."""


class ConsentError(ClearTraceError):
    """A consent request is invalid (unknown category, missing dependency)."""


class NoConsent(ConsentError):
    """Recording was asked for but no category has consent."""


class PolicyRefused(ConsentError):
    """A policy file is refused; `reason` is a short id (see consent/signed_policy.py)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class LedgerBroken(ClearTraceError):
    """Ledger verification failed at record `seq`: `reason` is a short id
    (consent/chain.py lists them), `detail` one line for people."""

    exit_code = 1

    def __init__(self, seq: int, detail: str, reason: str) -> None:
        super().__init__(f"ledger broken at record {seq}: {detail}")
        self.seq = seq
        self.detail = detail
        self.reason = reason


class DisplayUnavailable(ClearTraceError):
    """Input cannot be captured here: no display, refused connection, or Wayland."""


class RecorderError(ClearTraceError):
    """The recorder or its control socket failed."""


class RecorderNotRunning(RecorderError):
    """No recorder is running for this home."""


class BundleError(ClearTraceError):
    """A bundle is unusable; `reason` is a short id for reports and HTTP answers."""

    exit_code = 1
    reason = "bundle"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class BundleInvalid(BundleError):
    """The bytes are not a well-formed bundle (truncated, bad header, bad body)."""

    reason = "malformed"


class BundleSignatureInvalid(BundleError):
    """The device signature over the bundle does not verify."""

    reason = "bad-signature"


class BundleNotForThisKey(BundleError):
    """The bundle was sealed to another organisation key, or its seal is broken."""

    reason = "wrong-org-key"


class UploadError(ClearTraceError):
    """The collector could not be reached or refused an upload; the outbox keeps the bundle.

    `retryable`: whether trying again later can help (collector down, busy or
    rate-limiting) or not (a refusal that will not change by itself).
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class CollectorRefused(UploadError):
    """The collector answered with an error; `status` and `reason` say which."""

    def __init__(self, message: str, status: int, reason: str, body: dict[str, Any]) -> None:
        super().__init__(message, retryable=status == 429 or status >= 500)
        self.status = status
        self.reason = reason
        self.body = body
        self.retry_after: float | None = None


class UploadBusy(UploadError):
    """Another process of this home is uploading now; its pass does the work."""


class ClusterLost(ClearTraceError):
    """The Ray cluster an ingest ran on went away (its workers or nodes died
    beyond the retries): the run stops before any row is removed."""


class CodecError(ValueError):
    """The bytes are not a batch this codec wrote.

    Not a `ClearTraceError`: it never reaches a user. The chunk layer
    (store/chunks.py) translates it into `StoreCorrupt` naming the chunk.
    """


class DeviceRefused(Exception):
    """A device's bundles cannot be ingested: `reason` is a short id, `detail` one line."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class BodyTooSlow(Exception):
    """The body did not arrive in time: `rule` says which limit it missed.

    "body-timeout": all of it by the request's deadline; "header-timeout": the
    bundle header by its own, shorter deadline; "body-too-slow": the minimum
    arrival rate, after its grace period.
    """

    def __init__(self, rule: str) -> None:
        super().__init__(rule)
        self.rule = rule


class NotAdmitted(Exception):
    """Not admitted: `reason` is a short id, `retry_after` whole seconds."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
