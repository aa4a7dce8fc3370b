"""Every value the master key seals, in one list: what a key rotation rewraps.

A new kind of value sealed by the master key must be added to
`WRAPPED_BY_MASTER`, or rotating the master key would leave it sealed by the
old one, unreadable. An entry names where
the sealed values are (a query giving (row id, sealed bytes) pairs), how to
store a rewrapped one, and the associated data each was sealed with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cleartrace.store.crypto import wrap_aad

__all__ = ["KEY_CHECK", "KEY_CHECK_AAD", "WRAPPED_BY_MASTER", "MasterSealed"]

#: The plaintext of the key check: a value sealed by the master key in
#: meta['key_check'], so a wrong key is told apart from a damaged store.
KEY_CHECK = b"cleartrace-key-check"
KEY_CHECK_AAD = b"key-check"


@dataclass(frozen=True, slots=True)
class MasterSealed:
    """One kind of value sealed by the master key (`store.crypto.seal`)."""

    #: For messages: "session key", "key check", ...
    what: str
    #: SQL giving (row id, sealed bytes) for every value of this kind.
    select: str
    #: SQL storing a rewrapped value: parameters (sealed bytes, row id).
    update: str
    #: The associated data a value was sealed with, from its row id.
    aad: Callable[[str], bytes]


WRAPPED_BY_MASTER: tuple[MasterSealed, ...] = (
    MasterSealed(
        what="session key",
        select="SELECT id, wrapped_key FROM sessions WHERE wrapped_key IS NOT NULL",
        update="UPDATE sessions SET wrapped_key=? WHERE id=?",
        aad=wrap_aad,
    ),
    MasterSealed(
        what="key check",
        select="SELECT key, value FROM meta WHERE key='key_check'",
        update="UPDATE meta SET value=? WHERE key=?",
        aad=lambda _row: KEY_CHECK_AAD,
    ),
    MasterSealed(
        what="named key",
        select="SELECT name, wrapped FROM wrapped_keys",
        update="UPDATE wrapped_keys SET wrapped=? WHERE name=?",
        aad=wrap_aad,
    ),
)
