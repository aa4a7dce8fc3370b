"""A fleet of three real devices and one collector on 127.0.0.1, for the officer's
audit: what each device's person did (through the CLI, typing and clicking on the
device's own Xvfb) is recorded in `Fleet.did` and, as ledger kinds, in `ACTS`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.support.cli import ct
from tests.support.device_fleet import Device, device
from tests.support.orgkit import Org, make_org
from tests.support.waiting import wait_for

__all__ = ["ACTS", "Fleet", "fleet_of_three"]

#: The acts each device's person did, in order, as ledger kinds (acknowledgements aside).
ACTS = {
    "a": ["device.enrolled", "consent.given", "session.started", "session.ended",
          "session.started", "session.ended", "session.deleted", "session.redacted",
          "session.approved"],
    "b": ["device.enrolled", "consent.given", "session.started", "recording.paused",
          "recording.resumed", "session.ended", "session.approved", "consent.withdrawn",
          "session.started", "session.ended", "session.approved"],
    "c": ["device.enrolled", "consent.given", "session.started", "session.ended",
          "session.approved", "consent.withdrawn"],
}  # fmt: skip


@dataclass
class Fleet:
    """The organisation, its devices by name, the dataset ingested from its store."""

    org: Org
    devices: dict[str, Device]
    dataset: Path
    #: What each device did, as the test saw it (session ids by role).
    did: dict[str, dict[str, str]]
    #: Each device's key fingerprint, as `cleartrace status` shows it on the device.
    fps: dict[str, str]

    def fp(self, name: str) -> str:
        return self.fps[name]


def enroll(org: Org, dev: Device) -> None:
    dev.ct(
        "enroll", "--collector", org.collector.url, "--policy", str(org.policy),
        "--token", org.collector.token(),
    )  # fmt: skip


def session_typed(dev: Device, text: str, *, keys: bool = True, clicks: int = 1) -> str:
    """One recorded session: `text` typed, `clicks` clicks; returns its id."""
    rec = dev.record()
    new = str(rec.status()["session"])
    if text:
        dev.xdo("type", "--delay", "15", text)
        if keys:
            dev.wait_keys(rec, len(text))
    for _ in range(clicks):
        dev.xdo("mousemove", "60", "70", "click", "1")
    rec.stop()  # kept: something was clicked (no session.deleted follows in ACTS below)
    return new


def history_a(org: Org, a: Device) -> dict[str, str]:
    """Consent to all; two sessions; the first deleted, the second redacted, uploaded."""
    enroll(org, a)
    a.ct("consent", "give", "--all")
    dropped = session_typed(a, "draft")
    kept = session_typed(a, "hello secret world")
    a.ct("sessions", "delete", dropped)
    a.ct("sessions", "redact", kept, "--match", "secret")
    a.ct("sessions", "approve", kept)
    a.ct("upload", "--now")
    return {"deleted": dropped, "kept": kept}


def history_b(org: Org, b: Device) -> dict[str, str]:
    """Consent; a session paused and resumed, uploaded; keys withdrawn; another uploaded."""
    enroll(org, b)
    b.ct("consent", "give", "--all")
    rec = b.record()
    first = rec.status()["session"]
    b.xdo("type", "--delay", "15", "ab")
    b.wait_keys(rec, 2)
    b.ct("pause")
    wait_for(lambda: rec.hooks() == set(), what="every hook removed on b")
    b.xdo("type", "--delay", "15", "xy")  # while paused: never captured
    b.ct("resume")
    wait_for(lambda: "keyboard" in rec.hooks(), what="the keyboard hook back on b")
    b.xdo("type", "--delay", "15", "cd")
    b.wait_keys(rec, 4)
    assert rec.status()["session"] == first  # paused and resumed within one session
    rec.stop()
    (shown,) = [s for s in b.sessions() if s["id"] == first]
    assert shown["counts"]["keys"] == 8  # "ab" and "cd", pressed and released
    b.ct("sessions", "approve", first)
    b.ct("upload", "--now")
    b.ct("consent", "withdraw", "--category", "keys")
    second = session_typed(b, "zz", keys=False, clicks=2)
    b.ct("sessions", "approve", second)
    b.ct("upload", "--now")
    return {"first": first, "second": second}


def history_c(org: Org, c: Device) -> dict[str, str]:
    """Consent; a session uploaded; then consent withdrawn entirely (and that uploaded)."""
    enroll(org, c)
    c.ct("consent", "give", "--all")
    only = session_typed(c, "hi")
    c.ct("sessions", "approve", only)
    c.ct("upload", "--now")
    c.ct("consent", "withdraw", "--all")
    c.ct("upload", "--now")
    return {"only": only}


@contextlib.contextmanager
def fleet_of_three(root: Path) -> Iterator[Fleet]:
    """Devices a, b and c under `root`, their histories done, the store ingested into
    `root/dataset`; every process stopped on exit."""
    org = make_org(root / "org")
    org.collector.start()
    try:
        with device("a", root) as a, device("b", root) as b, device("c", root) as c:
            # Three people at their own machines at the same time, each on their display.
            with ThreadPoolExecutor(max_workers=3) as pool:
                runs = {
                    name: pool.submit(history, org, dev)
                    for name, history, dev in (
                        ("a", history_a, a), ("b", history_b, b), ("c", history_c, c)
                    )
                }  # fmt: skip
                did = {name: run.result() for name, run in runs.items()}
            data, dataset = org.collector.data, root / "dataset"
            ct(
                "org", "ingest", "--from", str(data), "--keys", str(org.keys_dir),
                "--out", str(dataset), "--witness-key", str(data / "witness.pub"), "--quiet",
            )  # fmt: skip
            devices = {"a": a, "b": b, "c": c}
            fps = {name: str(dev.json("status")["device"]) for name, dev in devices.items()}
            yield Fleet(org, devices, dataset, did, fps)
    finally:
        org.collector.stop()
