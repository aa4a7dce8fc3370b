"""The bundle: one session (or only ledger records) sealed to the organisation.

Layout (see docs/bundle-format.md, which has test vectors)::

    MAGIC "CTBUNDLE" | header length (u32, big-endian) | header |
    sealed body (HPKE enc || ciphertext) | Ed25519 signature (64 bytes)

The header (read and checked in `cleartrace.upload.bundle_header`, without
keys or Arrow) is RFC 8785 canonical JSON and is the HPKE `info`, so a header
cannot be moved onto another body: opening fails. HPKE alone does not say
who sealed a body, so the device signs everything before the signature.
The name of a bundle is the SHA-256 of all its bytes.

Body plaintext: ledger segment length (u32, big-endian) | the ledger records
base.seq+1..head.seq as canonical JSON lines | the events as an Arrow IPC
stream (absent in a ledger-only bundle).
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cleartrace.errors import BundleInvalid, BundleNotForThisKey, BundleSignatureInvalid
from cleartrace.formats import b64url, canonical, key_fingerprint, unb64url, verify_ed25519
from cleartrace.suites import OrgPublicKey, suite
from cleartrace.upload.bundle_header import (
    BUNDLE_TYPE,
    FORMAT_VERSION,
    HEADER_LENGTH,
    MAGIC,
    PREFIX,
    check_header,
    header_end,
    parse_header,
    read_json,
)
from cleartrace.upload.events_arrow import EVENT_SCHEMA, decode_events

__all__ = [
    "MAX_LEDGER_RECORD",
    "MAX_LEDGER_SEGMENT",
    "Bundle",
    "BundleBody",
    "OrgPrivateKey",
    "build_bundle",
    "open_bundle",
    "parse_bundle",
    "verify_signature",
]

#: A ledger record is a few hundred bytes, and a bundle carries the records since
#: the last upload; parsed JSON takes up to some twenty times its text, so these
#: bound what opening a hostile segment can hold.
MAX_LEDGER_RECORD = 64 * 1024
MAX_LEDGER_SEGMENT = 8 * 2**20
_SIG = 64
#: The body's ledger segment length.
_LEN = struct.Struct(">I")


class OrgPrivateKey(Protocol):
    """What `open_bundle` needs of the organisation's keys (org.keys.OrgKeys has it)."""

    @property
    def bundle_private(self) -> Any: ...

    @property
    def bundle_public(self) -> OrgPublicKey: ...


@dataclass(frozen=True)
class Bundle:
    """A parsed bundle: the header is checked in shape, nothing is verified yet."""

    raw: bytes | bytearray = field(repr=False)
    name: str
    header: dict[str, Any]
    header_bytes: bytes = field(repr=False)
    device_public_key: Ed25519PublicKey = field(repr=False)

    @property
    def device(self) -> str:
        return str(self.header["device"])

    @property
    def session(self) -> str | None:
        session = self.header["session"]
        return None if session is None else str(session)

    @property
    def base(self) -> tuple[int, str]:
        base = self.header["ledger"]["base"]
        return int(base["seq"]), str(base["hash"])

    @property
    def head(self) -> tuple[int, str]:
        head = self.header["ledger"]["head"]
        return int(head["seq"]), str(head["hash"])

    @property
    def _sealed(self) -> memoryview:
        start = PREFIX + len(self.header_bytes)
        return memoryview(self.raw)[start : len(self.raw) - _SIG]


@dataclass(frozen=True)
class BundleBody:
    """A bundle's decrypted content."""

    ledger: list[dict[str, Any]]
    events: pa.Table = field(repr=False)
    #: Each ledger record's line as sealed (the canonical bytes its hash is of,
    #: if the device is honest: consent/chain.py `walk(lines=...)` relies on no more).
    ledger_lines: list[bytes] = field(default_factory=list, repr=False)


def build_bundle(
    *,
    header_fields: Mapping[str, Any],
    ledger: Sequence[Mapping[str, Any]],
    events_ipc: bytes,
    org_key: OrgPublicKey,
    device_key: Ed25519PrivateKey,
) -> bytes:
    """Seal and sign a bundle.

    `header_fields` are the header without "v", "type", "suite", "org_key",
    "device_public_key" and "device", which this function fills from the keys.

    Raises:
        BundleInvalid: the header would not be well formed (a bug in the caller).
    """
    public = device_key.public_key().public_bytes_raw()
    header = {
        **header_fields,
        "v": FORMAT_VERSION,
        "type": BUNDLE_TYPE,
        "suite": org_key.suite,
        "org_key": org_key.fingerprint,
        "device_public_key": b64url(public),
        "device": key_fingerprint(public),
    }
    check_header(header)
    header_bytes = canonical(header)
    segment = b"".join(canonical(r) + b"\n" for r in ledger)
    plaintext = _LEN.pack(len(segment)) + segment + events_ipc
    sealed = suite(org_key.suite).encrypt(plaintext, org_key.hpke_key, info=header_bytes)
    signed = MAGIC + HEADER_LENGTH.pack(len(header_bytes)) + header_bytes + sealed
    return signed + device_key.sign(signed)


def parse_bundle(raw: bytes | bytearray) -> Bundle:
    """Split a bundle into its parts and check the header's shape.

    Raises:
        BundleInvalid: truncated, not a bundle, or a malformed header.
    """
    if len(raw) < PREFIX + _SIG:
        raise BundleInvalid("not a ClearTrace bundle (wrong magic or too short)", "malformed")
    if header_end(raw) + _SIG > len(raw):
        raise BundleInvalid("the bundle is truncated or its header length is wrong", "truncated")
    header, header_bytes = parse_header(raw)
    device_public = unb64url(header["device_public_key"])
    return Bundle(
        raw=raw,
        name=hashlib.sha256(raw).hexdigest(),
        header=header,
        header_bytes=header_bytes,
        device_public_key=Ed25519PublicKey.from_public_bytes(device_public),
    )


def verify_signature(bundle: Bundle) -> None:
    """Check the device signature over the bundle.

    Raises:
        BundleSignatureInvalid: the bytes were changed, or signed by another key
            than the one the header names.
    """
    signed = memoryview(bundle.raw)[: len(bundle.raw) - _SIG]
    if not verify_ed25519(bundle.device_public_key, bytes(bundle.raw[-_SIG:]), signed):
        raise BundleSignatureInvalid(
            f"bundle {bundle.name[:16]}: the device signature does not verify "
            "(changed after signing, or signed by another key)"
        )


def open_bundle(bundle: Bundle, org: OrgPrivateKey) -> BundleBody:
    """Decrypt a bundle with the organisation's private key.

    Verify the signature first (`verify_signature`); this only decrypts.

    Raises:
        BundleNotForThisKey: sealed to another key, or the sealed bytes or the
            header were changed.
        BundleInvalid: the decrypted body is malformed.
    """
    if bundle.header["org_key"] != org.bundle_public.fingerprint:
        raise BundleNotForThisKey(
            f"bundle {bundle.name[:16]} is sealed to organisation key "
            f"{bundle.header['org_key']}, not to {org.bundle_public.fingerprint}"
        )
    try:
        plaintext = suite(bundle.header["suite"]).decrypt(
            bytes(bundle._sealed), org.bundle_private, info=bundle.header_bytes
        )
    except (InvalidTag, ValueError):
        raise BundleNotForThisKey(
            f"bundle {bundle.name[:16]} does not open with this organisation key "
            "(another key, or the sealed part was changed)"
        ) from None
    if len(plaintext) < _LEN.size:
        raise BundleInvalid(f"bundle {bundle.name[:16]}: the body is truncated", "malformed")
    (length,) = _LEN.unpack_from(plaintext, 0)
    if _LEN.size + length > len(plaintext):
        raise BundleInvalid(f"bundle {bundle.name[:16]}: the ledger segment is cut", "malformed")
    ledger, lines = _ledger(bundle.name, plaintext[_LEN.size : _LEN.size + length])
    rest = memoryview(plaintext)[_LEN.size + length :]
    events = decode_events(rest) if len(rest) else EVENT_SCHEMA.empty_table()
    if bundle.session is None and events.num_rows:
        raise BundleInvalid(f"bundle {bundle.name[:16]}: a ledger-only bundle has events")
    if events.num_rows != bundle.header["events"]:
        raise BundleInvalid(
            f"bundle {bundle.name[:16]}: the body holds {events.num_rows} events, "
            f"the header says {bundle.header['events']}"
        )
    return BundleBody(ledger=ledger, events=events, ledger_lines=lines)


#: One JSON value at a position of a str, and where it ends: `json.loads` without its
#: per-call encoding detection, slicing and whitespace scans.
_decode_json = json.JSONDecoder().raw_decode


def _objects(segment: bytes) -> list[dict[str, Any]] | None:
    """The records of a segment written as the device writes it (ASCII, one JSON
    object a line, "\n" after each), in one pass; None for anything else."""
    if not segment.isascii() or b"\r" in segment:
        return None
    text = segment.decode("ascii")
    records: list[dict[str, Any]] = []
    pos, size = 0, len(text)
    try:
        while pos < size:
            record, end = _decode_json(text, pos)
            if type(record) is not dict or (end < size and text[end] != "\n"):
                return None
            records.append(record)
            pos = end + 1
    except (ValueError, RecursionError):
        return None
    return records


def _ledger(name: str, segment: bytes) -> tuple[list[dict[str, Any]], list[bytes]]:
    """The ledger records of a body and their lines: JSON objects, one a line,
    within the size bounds.

    Raises:
        BundleInvalid: too large, or not JSON object lines.
    """
    if len(segment) > MAX_LEDGER_SEGMENT:
        raise BundleInvalid(
            f"bundle {name[:16]}: the ledger segment is larger than {MAX_LEDGER_SEGMENT} bytes",
            "too-large",
        )
    lines = segment.splitlines()
    if any(len(line) > MAX_LEDGER_RECORD for line in lines):
        raise BundleInvalid(
            f"bundle {name[:16]}: a ledger record is longer than {MAX_LEDGER_RECORD} bytes",
            "too-large",
        )
    records = _objects(segment)
    # Not plain ASCII object lines (or a record across lines): each line read on its own.
    if records is None or len(records) != len(lines):
        records = []
        for line in lines:
            record = read_json(line, f"bundle {name[:16]}: the ledger segment")
            if not isinstance(record, dict):
                raise BundleInvalid(f"bundle {name[:16]}: a ledger record is not a JSON object")
            records.append(record)
    return records, lines
