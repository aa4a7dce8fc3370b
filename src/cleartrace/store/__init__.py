"""The encrypted local store: sessions of sealed chunks in SQLite, and key storage."""

from __future__ import annotations

from cleartrace.store.keys import Keys, describe_keystore, device_fingerprint, load_keys
from cleartrace.store.reading import SessionInfo
from cleartrace.store.session_state import SessionState
from cleartrace.store.sessions import SessionHandle, Store

__all__ = [
    "Keys",
    "SessionHandle",
    "SessionInfo",
    "SessionState",
    "Store",
    "describe_keystore",
    "device_fingerprint",
    "load_keys",
]
