"""`org ingest --engine ray`: the per-bundle work as Ray tasks, the decisions here.

Two rounds of tasks, each a call of the functions the in-process engine
calls (org/bundle_reader.py, org/ingest_bundle.py), in a worker of its own:

1. per bundle, `BundleReader.check` then `BundleReader.open` (fetch, hash,
   signature, decrypt, decode): the bundle's header facts and ledger segment
   come back, its events do not;
2. per device, in this process (the driver): its ledger rebuilt from the
   segments, its head checked and accepted, its `Coverage` folded, once
   (`Fleet.assemble`, `_Run.covered`); then per bundle whose rows are not
   in the dataset already, `bundle_work` (open again, cover, derive both
   tables' rows) in a task, and the rows written here, under the dataset's
   lock, in the in-process engine's order.

The organisation's private key never travels through Ray: a task is told the
key directory's path (`Workers`) and loads it there, once per worker process,
as the driver does; it is in no task argument, return value, name or error,
and so in no object-store spill file. The directory must be on every node,
readable only by the user the workers run as (a mounted secret). Decrypted
events stay inside a task; what a task returns (segments, rows) is sealed to
a key pair this run makes and only this process holds (org/ray_results.py),
so the object store, and any spill of it to Ray's temp dir, holds ciphertext.
At most `WINDOW_PER_CPU` rows tasks per CPU are in flight, so results do not
pile up before they are written.

Everything said of a bundle or device (rejections, their order, the summary)
is what the in-process engine says: worker rejections are replayed here in
the order that engine meets them.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cleartrace.consent.coverage import Coverage
from cleartrace.errors import ClusterLost, KeyStorageError, StoreError
from cleartrace.faults import fault_point
from cleartrace.org.blobstore import BlobStore, open_store
from cleartrace.org.bundle_reader import BundleReader, FleetBundle
from cleartrace.org.fleet import segment_of
from cleartrace.org.ingest import _Run
from cleartrace.org.ingest_bundle import bundle_work
from cleartrace.org.ingest_summary import Rejection
from cleartrace.org.keys import BundleKeys, load_bundle_keys
from cleartrace.org.ray_results import ResultKey, ResultSeal
from cleartrace.org.segments import Segment

__all__ = ["RayRun", "Workers"]

#: Rows tasks in flight per CPU of the cluster: enough to keep every worker busy
#: while this process writes, few enough that results wait in memory, not on disk.
WINDOW_PER_CPU = 2

#: (bundle, device or None, reason id, one line): a rejection as a worker saw it.
Said = tuple[str, str | None, str, str]


@dataclass(frozen=True, slots=True)
class Workers:
    """Where a worker finds the store and the organisation's key: names, never the key."""

    source: str
    endpoint_url: str | None
    keys: str


@dataclass(frozen=True, slots=True)
class Ticket:
    """A checked bundle as it crosses between processes (a `FleetBundle`, its
    device key as raw bytes: key objects do not pickle)."""

    name: str
    device: str
    public: bytes
    subject: str
    session: str | None
    base: tuple[int, str]
    head: tuple[int, str]
    header: Mapping[str, Any]

    @classmethod
    def of(cls, item: FleetBundle) -> Ticket:
        public = item.device_public_key.public_bytes_raw()
        return cls(
            item.name, item.device, public, item.subject, item.session, item.base, item.head,
            dict(item.header),
        )  # fmt: skip

    def item(self) -> FleetBundle:
        return FleetBundle(
            name=self.name,
            device=self.device,
            device_public_key=Ed25519PublicKey.from_public_bytes(self.public),
            subject=self.subject,
            session=self.session,
            base=self.base,
            head=self.head,
            header=self.header,
        )


@dataclass(frozen=True, slots=True)
class Opened:
    """What the first round says of one bundle: what its check and its opening
    rejected, and when both passed, the bundle and its ledger segment."""

    checked: list[Said]
    ticket: Ticket | None = None
    segment: Segment | None = None
    opened: list[Said] = field(default_factory=list)


#: Per worker process: the store and the key, opened once for all its tasks.
_opened_stores: dict[Workers, tuple[BlobStore, BundleKeys]] = {}


@contextlib.contextmanager
def _on_this_node() -> Iterator[None]:
    """A worker that cannot read the store or KEYS says which node it is on and
    what every node needs; it is never told as a bundle's rejection."""
    try:
        yield
    except (StoreError, KeyStorageError) as exc:
        raise type(exc)(
            f"on Ray node {socket.gethostname()} (worker pid {os.getpid()}): {exc}; every "
            "node needs KEYS and the store at the paths given (the same mount, or S3 "
            "credentials in the workers' environment)"
        ) from None


def _reader(workers: Workers) -> tuple[BundleReader, list[Said]]:
    if workers not in _opened_stores:
        opened = open_store(workers.source, endpoint_url=workers.endpoint_url)
        _opened_stores[workers] = (opened, load_bundle_keys(Path(workers.keys)))
    store, org = _opened_stores[workers]
    said: list[Said] = []
    return BundleReader(store, org, lambda *r: said.append(r)), said


#: The subjects and devices erased (org/subjects.py): their bundles are checked, not opened.
Erased = tuple[frozenset[str], frozenset[str]]


def open_task(workers: Workers, seal: ResultSeal, name: str, erased: Erased) -> bytes:
    """The first round's task: check and open one bundle, keep its ledger
    segment; what it returns is sealed to the run's key (org/ray_results.py)."""
    return seal.seal(_open(workers, name, erased), f"open/{name}")


def _open(workers: Workers, name: str, erased: Erased) -> Opened:
    with _on_this_node():
        reader, said = _reader(workers)
        item = reader.check(name)
        if item is None:
            return Opened(said)
        if item.subject in erased[0] or item.device in erased[1]:
            return Opened(said, Ticket.of(item))  # passed over, as in-process: never decrypted
        checked, said[:] = list(said), []
        body = reader.open(item)
    segment = None if body is None else segment_of(item, body)
    return Opened(checked, Ticket.of(item), segment, said)


def rows_task(
    workers: Workers, seal: ResultSeal, ticket: Ticket, coverage: Coverage, key: str
) -> bytes:
    """The second round's task: one bundle's rows under its device's coverage
    and the rejections said on the way, sealed to the run's key."""
    with _on_this_node():
        reader, said = _reader(workers)
        derived = bundle_work(reader, ticket.item(), coverage, key)
    fault_point("ray.rows")
    return seal.seal((derived, said), f"rows/{ticket.name}")


#: A task only reads (the store, KEYS) and returns a value: run again where its
#: worker or node died (not where it raised: that answer would be the same).
RETRIES = 3


def _get(ref: Any) -> Any:
    """A task's result; a task's own error is raised as itself, as in-process.

    Raises:
        ClusterLost: the task's workers or node died more often than `RETRIES`,
            or its result was lost with its node.
    """
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, Exception):
            raise cause from None
        raise _lost(exc) from None
    except ray.exceptions.RayError as exc:
        raise _lost(exc) from None


def _lost(exc: Exception) -> ClusterLost:
    return ClusterLost(
        f"the Ray cluster was lost during ingest ({type(exc).__name__}, after {RETRIES} "
        "retries of the task); no row was removed and the run was not recorded: check the "
        "cluster ('ray status') and run ingest again"
    )


class RayRun(_Run):
    """An ingest run whose per-bundle work runs on the connected Ray cluster."""

    def __init__(self, *args: Any, workers: Workers) -> None:
        super().__init__(*args)
        self.workers = workers
        self._opened: dict[str, Opened] = {}
        self._coverages: dict[str, Coverage] = {}
        #: Tasks' results are sealed to this run's key, opened here (org/ray_results.py).
        self.results = ResultKey.new()

    def _replay(self, said: list[Said]) -> None:
        for rejection in said:
            self.reject(*rejection)

    def group(self, names: list[str], done: Callable[[], object]) -> dict[str, list[FleetBundle]]:
        import ray

        fleet = self.fleet
        erased = ray.put((frozenset(fleet.erased_subjects), frozenset(fleet.erased_devices)))
        task = ray.remote(open_task).options(num_cpus=1, max_retries=RETRIES)
        seal = ray.put(self.results.public)
        refs = [task.remote(self.workers, seal, name, erased) for name in names]
        by_device: dict[str, list[FleetBundle]] = {}
        for name, ref in zip(names, refs, strict=True):
            opened: Opened = self.results.open(_get(ref), f"open/{name}")
            self._replay(opened.checked)
            item = None if opened.ticket is None else opened.ticket.item()
            if item is not None and (
                item.subject in fleet.erased_subjects or item.device in fleet.erased_devices
            ):
                fleet.erased_bundles += 1
            elif item is not None:
                self._opened[name] = opened
                by_device.setdefault(item.device, []).append(item)
            done()
        return by_device

    def _decide(
        self, device: str, items: list[FleetBundle], witnessed: Mapping[str, Any] | None
    ) -> tuple[list[Rejection], list[tuple[FleetBundle, str, bool]]]:
        """The device's rejections so far and its bundles to write: (bundle,
        coverage key, whether the dataset has its rows already)."""
        held: list[Rejection] = []
        kept, self.summary.rejected = self.summary.rejected, held
        try:
            items.sort(key=lambda i: (i.base[0], i.head[0], i.name))
            opened = []
            for item in items:
                result = self._opened.pop(item.name)
                self._replay(result.opened)
                if result.segment is not None:
                    opened.append((item, result.segment))
            found = self.fleet.assemble(device, opened, witnessed)
            coverage = self.covered(device, found)
        finally:
            self.summary.rejected = kept
        if found is None or coverage is None:
            return held, []
        work = []
        for item in found.bundles:
            key = coverage.key(item.session, item.head[0], item.base[0])
            work.append((item, key, self.dataset.up_to_date(item.name, key, self.formats)))
        self._coverages[device] = coverage
        return held, work

    def devices(
        self, by_device: dict[str, list[FleetBundle]], heads: Mapping[str, Any]
    ) -> Iterator[str]:
        import ray

        plans = [(d, *self._decide(d, by_device[d], heads.get(d))) for d in sorted(by_device)]
        task = ray.remote(rows_task).options(num_cpus=1, max_retries=RETRIES)
        shared = {d: ray.put(c) for d, c in self._coverages.items()}
        seal = ray.put(self.results.public)
        todo = iter(
            (item, key, shared[device])
            for device, _, work in plans
            for item, key, present in work
            if not present
        )
        cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
        window = max(1, int(cpus) * WINDOW_PER_CPU)
        flight: deque[Any] = deque()

        def fill() -> None:
            for item, key, coverage in todo:
                ticket = Ticket.of(item)
                flight.append(task.remote(self.workers, seal, ticket, coverage, key))
                if len(flight) >= window:
                    return

        fill()
        for device, held, work in plans:
            self.summary.rejected.extend(held)
            for item, key, present in work:
                if present:
                    self.unchanged(item, key)
                    continue
                derived, said = self.results.open(_get(flight.popleft()), f"rows/{item.name}")
                fill()
                self._replay(said)
                self.written(item, derived)
            yield device
