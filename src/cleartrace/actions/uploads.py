"""What leaves this computer: an upload pass now, and the outbox.

Uploading needs requests and pyarrow; they are imported inside these
functions, so that every other command starts without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.store.session_state import SessionState
from cleartrace.upload.alarm import ledger_alarm
from cleartrace.upload.enrolment import Enrolment, load_enrolment

if TYPE_CHECKING:
    from cleartrace.upload.upload_pass import UploadReport

__all__ = ["OutboxItem", "OutboxView", "outbox", "upload_now"]


def upload_now(home: Home, *, insecure_http: bool = False) -> UploadReport:
    """One upload pass in the foreground (the tray runs them in the background).

    Raises:
        UsageError, UploadError: see `upload.uploader.Uploader.run`.
    """
    from cleartrace.upload.uploader import Uploader

    return Uploader(home.paths, home.keys, insecure_http=insecure_http).run()


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A bundle queued to leave, or an approved session not bundled yet."""

    bundle: str | None
    session: str | None
    state: str
    size: int | None
    since_ns: int | None


@dataclass(frozen=True, slots=True)
class OutboxView:
    """What waits to leave, for whom, and why nothing leaves (`alarm`), if so."""

    enrolment: Enrolment | None
    items: list[OutboxItem]
    alarm: dict[str, Any] | None


def outbox(paths: Paths) -> OutboxView:
    """Bundles queued (oldest first), then approved sessions not yet bundled,
    and the latest ledger alarm; nothing when not enrolled (the home is not
    opened then)."""
    enrolment = load_enrolment(paths)
    if enrolment is None:
        return OutboxView(None, [], None)
    from cleartrace.upload.outbox import Outbox

    home = Home.open(paths, create=False)
    try:
        box = Outbox(home.paths.db)
        try:
            queued = box.queued()
        finally:
            box.close()
        sessions = home.store.list_sessions()
        alarm = ledger_alarm(home.ledger.records())
    finally:
        home.close()
    items = [OutboxItem(q.name, q.session_id, "queued", q.size, q.created_ns) for q in queued]
    bundled = {q.session_id for q in queued}
    items.extend(
        OutboxItem(None, info.id, SessionState.APPROVED, None, info.ended_ns)
        for info in sessions
        if info.state == SessionState.APPROVED
        and info.id not in bundled
        and enrolment.may_upload(info.started_ns)
    )
    return OutboxView(enrolment, items, alarm)
