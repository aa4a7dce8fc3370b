"""Acts on recorded sessions: list, review, redact, approve, hold, delete, export.

Every act takes an open `Home`; the CLI's commands and the tray's windows
call these and nothing beneath them, so each act is composed once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cleartrace.categories import PiiCategory
from cleartrace.consent.removal import remove_session
from cleartrace.consent.signed_policy import active_policy
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.preferences import hold_days
from cleartrace.review import approval, redaction
from cleartrace.review.activity import MinuteActivity
from cleartrace.review.cuts import removal_offsets
from cleartrace.review.export import export_all
from cleartrace.review.folding import Folded, fold
from cleartrace.review.pii import Finding
from cleartrace.review.text import EventsAt, Stream, StreamText
from cleartrace.review.withheld import Detection, detections, release, released_in
from cleartrace.store.keys import describe_keystore
from cleartrace.store.reading import SessionInfo
from cleartrace.store.redaction import Redaction

__all__ = [
    "SessionReview",
    "approve",
    "delete",
    "export",
    "hold",
    "list_at",
    "list_sessions",
    "redact",
    "release_detection",
    "review",
    "select_match",
    "select_pii",
    "select_span",
    "select_time",
    "session",
    "streams",
    "timed_activity",
]


@dataclass(frozen=True, slots=True)
class SessionReview:
    """One session as the review window shows it, and nothing more: no event
    (a 40-hour session's would take gigabytes), only what they come to."""

    info: SessionInfo
    started_ns: int
    anchor_mono_ns: int
    #: The wall-clock time of the session's first event (None: it has none).
    first_ns: int | None
    streams: list[StreamText] = field(repr=False)
    findings: list[list[Finding]] = field(repr=False)
    #: Per stream, per finding: what the upload does with it (review/withheld.py).
    detections: list[list[Detection]] = field(repr=False)
    activity: list[MinuteActivity]
    redactions: list[Redaction]
    auto_approve_ns: int | None
    #: Per stream, the text offsets where a redaction took typing out.
    cuts: list[list[int]] = field(default_factory=list)

    def wall_ns(self, t_ns: int) -> int:
        """A monotonic event time on the wall clock."""
        return self.started_ns + t_ns - self.anchor_mono_ns


def _settled(home: Home) -> int:
    """Approve what the hold period approves before any state is shown; returns
    the hold period in force (days).

    Raises:
        PolicyRefused: the installed policy does not verify.
    """
    hold = hold_days(home.paths, active_policy(home.paths))
    approval.settle(home.store, home.ledger, hold)
    return hold


def list_sessions(home: Home) -> list[tuple[SessionInfo, int | None]]:
    """Every session with when it approves itself (None: not pending), after
    approving what the hold period approves."""
    hold = _settled(home)
    return [(s, approval.auto_approve_at(s, hold)) for s in home.store.list_sessions()]


def session(home: Home, id_or_prefix: str) -> tuple[SessionInfo, int | None]:
    """One session (by id or unique prefix) and when it approves itself.

    Raises:
        UnknownSession, UsageError: no session, or several, match.
    """
    hold = _settled(home)
    info = home.store.session(id_or_prefix)
    return info, approval.auto_approve_at(info, hold)


def _detections(
    home: Home, session_id: str, events: EventsAt, texts: list[Stream]
) -> list[list[Detection]]:
    started, anchor = home.store.anchors(session_id)
    return detections(
        events,
        active_policy(home.paths),
        started_ns=started,
        anchor_ns=anchor,
        released=released_in(home.ledger.records(), session_id),
        streams=texts,
    )


def streams(
    home: Home, session_id: str, *, pii: bool = False
) -> list[tuple[Stream, list[Detection] | None]]:
    """The session's text, stream by stream; with `pii`, what the detectors
    find in each and whether the upload leaves it out."""
    folded = _fold(home, session_id, activity=False)
    texts = folded.text.finish()
    if not pii:
        return [(s, None) for s in texts]
    found = _detections(home, session_id, folded.text.placed, texts)
    return list(zip(texts, found, strict=True))


def timed_activity(home: Home, session_id: str) -> tuple[int, list[MinuteActivity]]:
    """Per minute of the session: counts and exclusion shading, with the wall
    time of its first event (0 when it has none)."""
    folded = _fold(home, session_id, text=False)
    if folded.activity.first_t_ns is None:
        return 0, []
    started, anchor = home.store.anchors(session_id)
    return started + folded.activity.first_t_ns - anchor, folded.activity.finish()


def _fold(home: Home, session_id: str, *, text: bool = True, activity: bool = True) -> Folded:
    """A session's events folded into its text and its activity one stored
    chunk at a time: only one chunk is ever decoded, whatever the length."""
    return fold(home.store.event_chunks(session_id), text=text, activity=activity)


def review(home: Home, session_id: str) -> SessionReview:
    """Decrypt and analyse one session: text, findings, activity, markers.

    What the window shows is folded from the session's chunks as they are
    decoded, one at a time; no event is kept.
    """
    policy = active_policy(home.paths)
    store = home.store
    info = store.session(session_id)
    folded = _fold(home, info.id)
    texts = folded.text.finish()
    started, anchor = store.anchors(info.id)
    redactions = store.redactions(info.id)
    typing_cut = [r.from_ns - started + anchor for r in redactions if r.removed.get("keys")]
    placed = folded.text.placed
    found = _detections(home, info.id, placed, texts)
    first = folded.activity.first_t_ns
    return SessionReview(
        info=info,
        started_ns=started,
        anchor_mono_ns=anchor,
        first_ns=None if first is None else started + first - anchor,
        streams=[s.shown() for s in texts],
        findings=[[d.finding for d in stream] for stream in found],
        detections=found,
        activity=folded.activity.finish(),
        redactions=redactions,
        auto_approve_ns=approval.auto_approve_at(info, hold_days(home.paths, policy)),
        cuts=removal_offsets(texts, placed, typing_cut),
    )


# -- redaction -------------------------------------------------------------------------


def select_span(
    home: Home, session_id: str, stream: int, start: int, end: int
) -> redaction.Selection:
    """What characters `start:end` of stream `stream` (from 1) were typed with."""
    text = _fold(home, session_id, activity=False).text
    streams = text.finish()
    return redaction.by_span(session_id, text.placed, stream, start, end, streams=streams)


def select_match(home: Home, session_id: str, pattern: str) -> redaction.Selection:
    text = _fold(home, session_id, activity=False).text
    return redaction.by_match(session_id, text.placed, pattern, streams=text.finish())


def select_time(home: Home, session_id: str, start_ns: int, end_ns: int) -> redaction.Selection:
    """Every event stamped in [start_ns, end_ns), read a chunk at a time."""
    return redaction.by_time(home.store, session_id, None, start_ns, end_ns)


def select_pii(
    home: Home, session_id: str, categories: Iterable[PiiCategory] | None = None
) -> redaction.Selection:
    """What the PII detectors find; by default those the policy flags for review."""
    text = _fold(home, session_id, activity=False).text
    chosen = active_policy(home.paths).pii if categories is None else tuple(categories)
    return redaction.by_pii(session_id, text.placed, chosen, streams=text.finish())


def redact(home: Home, selection: redaction.Selection) -> Redaction:
    """Remove what `selection` chose, for good (ledgered)."""
    return redaction.apply(home.store, home.ledger, selection)


def release_detection(
    home: Home, id_or_prefix: str, stream: int, start: int, end: int
) -> tuple[SessionInfo, Detection]:
    """Let what the detectors found at characters `start:end` of text stream
    `stream` (from 1) be uploaded as typed: the person says it is not personal
    data (ledgered).

    Raises:
        UnknownSession, UsageError: no such session, it is being recorded or
            was uploaded already, or no withheld detection is at that span.
    """
    info = home.store.session(id_or_prefix)
    reconstruction = _fold(home, info.id, activity=False).text
    texts = reconstruction.finish()
    found = _detections(home, info.id, reconstruction.placed, texts)
    return info, release(home.store, home.ledger, info, found, stream, start, end)


# -- decisions -------------------------------------------------------------------------


def approve(home: Home, id_or_prefix: str) -> tuple[SessionInfo, bool]:
    """Approve for upload (ledgered); True if it was not approved already."""
    info = home.store.session(id_or_prefix)
    return info, approval.approve(home.store, home.ledger, info.id)


def hold(home: Home, id_or_prefix: str) -> tuple[SessionInfo, bool]:
    """Hold: it never approves itself (ledgered); True if it was not held already."""
    info = home.store.session(id_or_prefix)
    return info, approval.hold(home.store, home.ledger, info.id)


def delete(home: Home, id_or_prefix: str) -> SessionInfo:
    """Delete a session for good, ledgered in the same commit; a bundle of it
    still waiting in the outbox goes in that commit too (store.deletion).

    Raises:
        UnknownSession, UsageError: no such session (or several match), or it
            is being recorded.
        DiskFull: no room to record the deletion; nothing was changed.
    """
    info = home.store.session(id_or_prefix)
    remove_session(home.store, home.ledger, info.id)
    return info


def export(home: Home, out: Path) -> int:
    """Write every session, the ledger and the consent, unencrypted, to `out`;
    returns how many sessions."""
    return export_all(home.store, home.ledger, active_policy(home.paths), out)


def list_at(paths: Paths) -> list[tuple[SessionInfo, int | None]]:
    """`list_sessions` of the home at `paths`; none on a home not set up yet.

    A person's first `cleartrace sessions list` is an empty list, not an
    error, and it creates no key: without a key marker and a store there is
    nothing recorded to list.

    Raises:
        KeyStorageError, StoreError: a home that is set up but cannot be opened.
    """
    if describe_keystore(paths) is None and not paths.db.exists():
        return []
    home = Home.open(paths, create=False)
    try:
        return list_sessions(home)
    finally:
        home.close()
