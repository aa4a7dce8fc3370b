"""The one exception tree of ClearTrace.

Every message names the object concerned and the fix, never captured content
(typed text, window titles, key bytes)::

    ClearTraceError                 exit_code 2 unless stated
    ├── UsageError                  bad arguments or input file
    ├── HomeError                   the home directory is unsafe or unusable
    ├── KeyStorageError             a key is missing, unreadable or insecure
    ├── StoreError
    │   ├── WrongKey                the master key does not open this store
    │   ├── StoreCorrupt            the database file is damaged
    │   ├── DiskFull                no room to write
    │   └── UnknownSession          no session has that id
    ├── ConsentError
    │   └── NoConsent               nothing to record without consent
    ├── LedgerBroken                exit_code 1: verification found tampering
    ├── DisplayUnavailable          no X display, refused connection, Wayland
    └── RecorderError
        └── RecorderNotRunning      no recorder owns the control socket
"""

from __future__ import annotations

__all__ = [
    "ClearTraceError",
    "ConsentError",
    "DiskFull",
    "DisplayUnavailable",
    "HomeError",
    "KeyStorageError",
    "LedgerBroken",
    "NoConsent",
    "RecorderError",
    "RecorderNotRunning",
    "StoreCorrupt",
    "StoreError",
    "UnknownSession",
    "UsageError",
    "WrongKey",
]


class ClearTraceError(Exception):
    """Base of every error ClearTrace reports to a user."""

    exit_code = 2


class UsageError(ClearTraceError):
    """Bad arguments or bad input file."""


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


class LedgerBroken(ClearTraceError):
    """Ledger verification failed at a given sequence number."""

    exit_code = 1

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"ledger broken at record {seq}: {reason}")
        self.seq = seq
        self.reason = reason


class DisplayUnavailable(ClearTraceError):
    """Input cannot be captured here: no display, refused connection, or Wayland."""


class RecorderError(ClearTraceError):
    """The recorder or its control socket failed."""


class RecorderNotRunning(RecorderError):
    """No recorder is running for this home."""
