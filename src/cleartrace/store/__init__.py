"""The encrypted local store: sessions of sealed chunks in SQLite, and key storage."""

from __future__ import annotations

from cleartrace.store.keys import Keys, describe_keystore, device_fingerprint, load_keys
from cleartrace.store.sessions import SessionHandle, SessionInfo, Store

__all__ = [
    "Keys",
    "SessionHandle",
    "SessionInfo",
    "Store",
    "describe_keystore",
    "device_fingerprint",
    "load_keys",
]
