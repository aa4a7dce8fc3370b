"""The organisation's own ledger: every org-side act, in the device ledgers' record format.

Who accessed what, when, is kept the way a device keeps its consent: each
act is a record made by `make_record`, signed by `sign_record` and chained
by `record_hash`, and checked by the one chain walk (`consent.chain.walk`).
Two chains (docs/adr/0005-org-ledger.md):

- the collector's (`tokens.issued`, `device.admitted`), signed by its
  witness key, in its registry (DATA/collector.db, table `org_ledger`),
  appended in the same transaction as the act (org/registry.py);
- the officer side's (`ingest.run`, `audit.run`, `subject.exported`,
  `subject.erased`, `table.purged`), signed by the organisation's ledger key
  (KEYS/ledger.key, created on first use beside bundle.key; a key of its
  own so that ingest, which records its runs here, never needs the
  policy-signing key), in a JSON Lines file: by default next to the
  dataset, DATASET.org-ledger.jsonl, or wherever `--org-ledger FILE` says.

Both are exported as the same JSON Lines: a header line naming the chain and
its signer, then one canonical record per line. Records carry ids, counts,
digests and times, never content (the field checks below leave nowhere for it).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cleartrace.consent.chain import walk
from cleartrace.consent.record_fields import HEX64, MAX_INT, FieldCheck
from cleartrace.consent.records import (
    GENESIS,
    KIND_FIELDS,
    check_signature,
    make_record,
    record_hash,
    register_field,
    register_kind,
    sign_record,
)
from cleartrace.errors import LedgerBroken, UsageError
from cleartrace.formats import b64url, canonical, key_fingerprint
from cleartrace.org.key_pairs import load_or_create

__all__ = [
    "COLLECTOR",
    "LEDGER_TYPE",
    "OFFICER",
    "OrgLedgerFile",
    "default_path",
    "export_lines",
    "load_ledger_key",
    "next_record",
    "parse_lines",
    "verify_chain",
]

LEDGER_TYPE = "cleartrace-org-ledger"
LEDGER_VERSION = 1
#: The two chains' names, as header lines and the report say them.
COLLECTOR, OFFICER = "collector", "officer"

_DEVICE = re.compile(r"sha256:[0-9a-f]{64}")
_SUBJECT = re.compile(r"[0-9a-f]{32}")


def _count(name: str, low: int) -> FieldCheck:
    def check(value: object) -> None:
        if type(value) is not int or not low <= value <= MAX_INT:
            raise ValueError(f"'{name}' must be an integer of at least {low}")

    return check


def _device(value: object) -> None:
    if not (isinstance(value, str) and _DEVICE.fullmatch(value)):
        raise ValueError("'device' must be a device fingerprint sha256:<64 hex>")


def _subject(value: object) -> None:
    if not (isinstance(value, str) and _SUBJECT.fullmatch(value)):
        raise ValueError("'subject' must be a pseudonymous subject id of 32 hex digits")


def _digest(value: object) -> None:
    if not (isinstance(value, str) and HEX64.fullmatch(value)):
        raise ValueError("'digest' must be a SHA-256 of 64 lower-case hex digits")


def _table(value: object) -> None:
    if value not in ("events", "actions"):
        raise ValueError("'table' must be one of the dataset's tables: events, actions")


def _snapshot(value: object) -> None:
    # A decimal string: Iceberg snapshot ids are 63-bit, beyond JSON's exact integers.
    if not (isinstance(value, str) and re.fullmatch(r"[1-9][0-9]{0,18}", value)):
        raise ValueError("'snapshot' must be an Iceberg snapshot id in decimal")


def _register() -> None:
    """Declare the org kinds once (a second import of this module must not redeclare)."""
    if "tokens.issued" in KIND_FIELDS:
        return
    register_field("tokens", _count("tokens", 1))
    register_field("device", _device)
    register_field("subject", _subject)
    register_field("bundles", _count("bundles", 0))
    register_field("rows", _count("rows", 0))
    register_field("devices", _count("devices", 0))
    register_field("digest", _digest)
    register_field("table", _table)
    register_field("snapshot", _snapshot)
    register_field("files", _count("files", 0))
    # Collector side: enrolment tokens made (how many), a device admitted with one.
    register_kind("tokens.issued", ["tokens"])
    register_kind("device.admitted", ["device", "subject"])
    # Officer side: `digest` binds the record to what the act produced.
    register_kind("ingest.run", ["bundles", "rows", "digest"])
    register_kind("audit.run", ["devices", "digest"])
    register_kind("subject.exported", ["subject", "bundles", "rows", "digest"])
    register_kind("subject.erased", ["subject", "bundles", "rows", "digest"])
    # An Iceberg table's purge (org/table.py): the snapshot kept, how many files
    # went, and the SHA-256 of their names.
    register_kind("table.purged", ["table", "snapshot", "files", "digest"])


_register()


def next_record(
    last: Mapping[str, Any] | None, kind: str, fields: Mapping[str, Any], key: Ed25519PrivateKey
) -> dict[str, Any]:
    """The signed record that follows `last` (None: the first record), once
    `last` is proven signed by `key`: the new signature vouches for it
    (consent/chain.py, "One signature per run").

    Raises:
        ValueError: an unknown kind, or fields it may not carry.
        LedgerBroken: `last` is not signed by `key` (changed in storage).
    """
    if last is not None:
        check_signature(last, key.public_key())
    seq = 1 if last is None else int(last["seq"]) + 1
    prev = GENESIS if last is None else record_hash(last)
    return sign_record(make_record(seq=seq, prev=prev, kind=kind, fields=fields), key)


def _header(chain: str, signer: Ed25519PublicKey) -> dict[str, Any]:
    raw = signer.public_bytes_raw()
    return {
        "v": LEDGER_VERSION,
        "type": LEDGER_TYPE,
        "chain": chain,
        "signer_public_key": b64url(raw),
        "signer": key_fingerprint(raw),
    }


def export_lines(
    chain: str, signer: Ed25519PublicKey, records: Sequence[Mapping[str, Any]]
) -> bytes:
    """The chain as JSON Lines: its header, then one canonical record per line."""
    lines = [canonical(_header(chain, signer)), *(canonical(r) for r in records)]
    return b"".join(line + b"\n" for line in lines)


def parse_lines(data: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and records of an exported org ledger.

    Raises:
        LedgerBroken: not an org ledger, or a line that is not a JSON object
            (torn or edited): `seq` is the record it stands for.
    """
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    try:
        header = json.loads(lines[0]) if lines else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("type") != LEDGER_TYPE:
        raise LedgerBroken(0, "the first line is not an org ledger header", "ledger-bad-record")
    records = []
    for number, line in enumerate(lines[1:], start=1):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            raise LedgerBroken(number, f"line {number + 1} is not a record", "ledger-bad-record")
        records.append(record)
    return header, records


def verify_chain(
    data: bytes, signer: Ed25519PublicKey
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Parse and walk an exported org ledger against the key that must have signed it.

    Raises:
        LedgerBroken: the header names another signer, or the walk fails.
    """
    header, records = parse_lines(data)
    if header.get("signer_public_key") != b64url(signer.public_bytes_raw()):
        raise LedgerBroken(
            0, "the ledger names another signer than the one expected", "ledger-foreign"
        )
    walk(records, signer)
    return header, records


LEDGER_KEY, LEDGER_PUB = "ledger.key", "ledger.pub"
_KEY_TYPE = "cleartrace-org-ledger-key"
_PUB_TYPE = "cleartrace-org-ledger-public-key"


def load_ledger_key(keys_dir: Path) -> Ed25519PrivateKey:
    """The officer side's ledger key, KEYS/ledger.key, created (0600, with
    ledger.pub beside it) on first use, as the collector creates its witness key.

    Raises:
        KeyStorageError: the file is damaged or refused by `read_private_file`.
        DiskFull: no room to create it.
    """
    return load_or_create(
        keys_dir / LEDGER_KEY, keys_dir / LEDGER_PUB, (_KEY_TYPE, _PUB_TYPE), "org ledger"
    )


def _tail_checked(data: bytes, signer: Ed25519PublicKey) -> list[dict[str, Any]]:
    """The records of an org ledger whose header names `signer` and whose last
    record is proven (signature, form, number); see `OrgLedgerFile.append`.

    Raises:
        LedgerBroken: it is not.
    """
    header, records = parse_lines(data)
    if header.get("signer_public_key") != b64url(signer.public_bytes_raw()):
        raise LedgerBroken(0, "the ledger names another signer than its key", "ledger-foreign")
    if records:
        last = records[-1]
        seq = last.get("seq")
        if type(seq) is not int or seq != len(records) or not isinstance(last.get("prev"), str):
            raise LedgerBroken(len(records), "the records are not numbered 1 to N", "ledger-gap")
        walk([last], signer, base=(seq - 1, str(last["prev"])))
    return records


def default_path(dataset: Path) -> Path:
    """The officer side's ledger next to the dataset: DATASET.org-ledger.jsonl.

    Beside the dataset, not in it: the audit hashes every file of the dataset
    before it records itself here.
    """
    return dataset.with_name(dataset.name + ".org-ledger.jsonl")


class OrgLedgerFile:
    """The officer side's chain in a JSON Lines file, appended under an exclusive lock."""

    def __init__(self, path: Path, key: Ed25519PrivateKey) -> None:
        self.path = path
        self._key = key

    @contextmanager
    def _locked(self) -> Iterator[int]:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise UsageError(
                f"cannot open the org ledger {self.path}: {exc.strerror}; give --org-ledger a "
                "file you can write"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # appends wait for one another, in order
            yield fd
        finally:
            os.close(fd)

    def append(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Append one signed record after the file's last; returns it.

        The file must parse, be this key's, and end in a record of this key
        whose number is the count of records: a record is not appended to a
        ledger visibly cut, torn or taken over. The whole walk, at every
        append, would grow with the ledger (0.26 s at 1,000 records); it is
        the audit's, which walks it all before it appends (org_ledger_audit.py).

        Raises:
            LedgerBroken: the file is not an intact org ledger of this key.
            UsageError: the file cannot be written.
        """
        with self._locked() as fd:
            with os.fdopen(os.dup(fd), "rb") as fh:
                data = fh.read()
            signer = self._key.public_key()
            if data:
                records = _tail_checked(data, signer)
                out = b""
            else:
                records, out = [], export_lines(OFFICER, signer, [])
            record = next_record(records[-1] if records else None, kind, fields, self._key)
            out += canonical(record) + b"\n"
            try:
                os.lseek(fd, 0, os.SEEK_END)
                view = memoryview(out)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError as exc:
                raise UsageError(
                    f"cannot append to the org ledger {self.path}: {exc.strerror}; free space "
                    "or fix its permissions"
                ) from None
        return record
