"""The uploader: approved sessions become bundles, bundles reach the collector.

One pass (`Uploader.run`), used by `cleartrace upload --now` and, on a timer,
by the recorder and the tray (`BackgroundUploader`, background.py):

1. sessions whose hold period passed are approved (ledgered as such);
2. bundles already queued are sent first, oldest first — except one holding
   a category withdrawn or refused since it was built, which is dropped (its
   session is bundled again without it);
3. each approved session is bundled against the ledger head the collector
   witnessed (asked just before) with only what is consented now, field by
   field (consented.py), queued durably, then sent;
4. ledger records not yet uploaded (a withdrawal, a deletion) travel in a
   ledger-only bundle, so the organisation learns of them without new data;
5. uploaded sessions past the policy's `keep_uploaded_days` are shredded
   (shredding.py).

The steps live in upload_pass.py. A bundle leaves the outbox only when the
collector acknowledged its name. A collector head this ledger does not hold
stops the pass and is ledgered as `ledger.rollback`, once per head (alarm.py).
Failures that may pass (collector down, 5xx, 429) are retried with
exponential backoff and full jitter; the bundle stays queued either way.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from cleartrace.consent.ledger import Ledger
from cleartrace.consent.policy import Policy
from cleartrace.consent.signed_policy import installed_policy
from cleartrace.errors import (
    CollectorRefused,
    UploadBusy,
    UploadError,
    UsageError,
)
from cleartrace.paths import Paths, exclusive_lock
from cleartrace.preferences import hold_days
from cleartrace.review.approval import settle
from cleartrace.store.db import connect
from cleartrace.store.keys import Keys
from cleartrace.store.sessions import Store
from cleartrace.suites import OrgPublicKey
from cleartrace.upload.client import CollectorClient, check_transport
from cleartrace.upload.enrolment import Enrolment, load_enrolment
from cleartrace.upload.outbox import Outbox
from cleartrace.upload.shredding import shred_expired
from cleartrace.upload.upload_pass import UploadPass, UploadReport

__all__ = [
    "Retry",
    "Uploader",
    "require_enrolment",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_LOCK = "upload.lock"


@dataclass(frozen=True, slots=True)
class Retry:
    """Exponential backoff with full jitter: attempt n waits U(0, min(cap, base * 2**n))."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 60.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.cap, self.base * 2**attempt))


def require_enrolment(paths: Paths) -> Enrolment:
    """The enrolment, or a UsageError saying how to enrol."""
    enrolment = load_enrolment(paths)
    if enrolment is None:
        raise UsageError(
            "this device is not enrolled with a collector; run 'cleartrace enroll "
            "--collector URL --policy FILE --token T' with what your organisation gave you"
        )
    return enrolment


def _org_key(policy: Policy) -> OrgPublicKey:
    if policy.org_key is None:
        raise UsageError(
            f"the policy in force ({policy.id} v{policy.version}) names no organisation key; "
            "enrol with your organisation's signed policy first"
        )
    return policy.org_key


class Uploader:
    """One device's uploads. Opens its own connections, so any thread may own it."""

    def __init__(
        self,
        paths: Paths,
        keys: Keys,
        *,
        retry: Retry = Retry(),
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        insecure_http: bool = False,
    ) -> None:
        self._insecure_http = insecure_http
        self._paths = paths
        self._keys = keys
        self._retry = retry
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret

    def run(self, now_ns: int | None = None) -> UploadReport:
        """One pass; see the module docstring.

        Raises:
            UsageError: not enrolled, or the policy names no organisation key; the
                enrolment names a plain http:// collector on another machine
                (without `insecure_http`).
            UploadError: the collector stayed unreachable or refused; what was
                acknowledged before is reported in the ledger, the rest stays queued.
        """
        enrolment = require_enrolment(self._paths)
        check_transport(enrolment.collector, insecure_http=self._insecure_http)
        signed = installed_policy(self._paths)
        if signed is None:
            raise UsageError(
                "this device is enrolled but its organisation's policy is missing; "
                "enrol again ('cleartrace enroll')"
            )
        enrolment.check_policy(signed)
        policy = signed.policy
        org_key = _org_key(policy)
        # One pass at a time per home (the tray, the recorder and the CLI may
        # all try): two would bundle the same session twice.
        busy = "another upload is running for this home; try again when it has finished"
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(exclusive_lock(self._paths.home / _LOCK, busy))
            except UsageError as exc:
                raise UploadBusy(str(exc), retryable=True) from None
            return self._run(enrolment, policy, org_key, now_ns)

    def _run(
        self, enrolment: Enrolment, policy: Policy, org_key: OrgPublicKey, now_ns: int | None
    ) -> UploadReport:
        store = Store.open(self._paths, self._keys)
        ledger = Ledger(connect(self._paths.db), self._paths.db, self._keys.device)
        outbox = Outbox(self._paths.db)
        client = CollectorClient(enrolment.collector)
        report = UploadReport()
        try:
            report.approved = settle(store, ledger, hold_days(self._paths, policy), now_ns)
            run = UploadPass(
                self.call,
                self._keys.device,
                enrolment,
                policy,
                org_key,
                store,
                ledger,
                outbox,
                client,
                report,
            )
            run.flush_queue()
            run.bundle_sessions()
            run.bundle_ledger()
            report.shredded = shred_expired(store, ledger, outbox, policy, now_ns)
            if run.refused:
                raise UploadError(
                    f"the collector refused {len(run.refused)} bundle(s) ({run.refused[0]}); "
                    "they stay in the outbox and are offered again on the next upload; "
                    "everything else was uploaded"
                )
        finally:
            client.close()
            outbox.close()
            ledger.close()
            store.close()
        return report

    def call(self, func: Callable[[], _T]) -> _T:
        """`func()` with retries for failures that may pass."""
        for attempt in range(self._retry.attempts):
            try:
                return func()
            except UploadError as exc:
                if not exc.retryable or attempt == self._retry.attempts - 1:
                    raise
                delay = self._retry.delay(attempt, self._rng)
                if isinstance(exc, CollectorRefused) and exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, self._retry.cap))
                log.info(
                    "upload attempt %d failed (%s); retrying in %.1f s", attempt + 1, exc, delay
                )
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover
