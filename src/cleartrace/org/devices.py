"""What the collector's registry holds of a device and of a bundle, and how a
row of its `devices` table reads (org/registry.py writes them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["DEVICE_COLUMNS", "DEVICE_SELECT", "Device", "Head", "StoredBundle", "device_of_row"]


class Head(NamedTuple):
    """A ledger head: the last record's sequence number and hash."""

    seq: int
    hash: str

    def as_json(self) -> dict[str, object]:
        return {"seq": self.seq, "hash": self.hash}


@dataclass(frozen=True, slots=True)
class Device:
    """An enrolled device and the ledger head the collector witnessed for it."""

    device: str
    public_key: bytes
    subject: str
    enrolled_at: str
    head: Head
    head_bundle: str | None
    head_time: str | None
    #: The witness counter stamped on the head when it was accepted (0: none yet).
    head_counter: int = 0

    @property
    def hex(self) -> str:
        """The fingerprint without its "sha256:" prefix, as URLs and file names carry it."""
        return self.device.removeprefix("sha256:")

    def as_json(self) -> dict[str, object]:
        return {
            "device": self.device,
            "subject": self.subject,
            "enrolled_at": self.enrolled_at,
            "head": self.head.as_json(),
            "head_bundle": self.head_bundle,
            "head_time": self.head_time,
            "head_counter": self.head_counter,
        }


@dataclass(frozen=True, slots=True)
class StoredBundle:
    """A bundle the collector accepted."""

    name: str
    device: str
    size: int
    received: str


#: A device row's columns, in the order `device_of_row` reads them.
DEVICE_COLUMNS = (
    "device, public_key, subject, enrolled_at, head_seq, head_hash, head_bundle, "
    "head_time, head_counter"
)
DEVICE_SELECT = f"SELECT {DEVICE_COLUMNS} FROM devices"  # noqa: S608 - fixed text


def device_of_row(row: tuple[object, ...]) -> Device:
    device, public_key, subject, enrolled_at, seq, hash_, bundle, when, counter = row
    assert isinstance(public_key, bytes)
    assert isinstance(seq, int)
    assert isinstance(counter, int)
    return Device(
        device=str(device),
        public_key=public_key,
        subject=str(subject),
        enrolled_at=str(enrolled_at),
        head=Head(seq, str(hash_)),
        head_bundle=None if bundle is None else str(bundle),
        head_time=None if when is None else str(when),
        head_counter=counter,
    )
