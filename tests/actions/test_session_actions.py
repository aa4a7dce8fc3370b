"""Deleting a session: one ledger record in the same commit, and no bundle of
it left to leave."""

from __future__ import annotations

import pytest

from cleartrace.actions import sessions
from cleartrace.errors import UnknownSession
from cleartrace.home import Home
from cleartrace.upload.outbox import Outbox
from tests.support.sessions import closed_session


def approve(home: Home, session_id: str) -> None:
    home.store.set_state(
        session_id,
        "approved",
        lambda conn: home.ledger.append_in(
            conn, "session.approved", session=session_id, by="person"
        ),
    )


def test_delete_removes_the_session_and_ledgers_it_once(home: Home) -> None:
    session = closed_session(home)
    info = sessions.delete(home, session[:12])  # a unique prefix names it
    assert info.id == session
    assert [s.id for s in home.store.list_sessions()] == []
    deleted = [r for r in home.ledger.records() if r["kind"] == "session.deleted"]
    assert [r["session"] for r in deleted] == [session]
    with pytest.raises(UnknownSession):
        sessions.delete(home, session)
    assert sum(r["kind"] == "session.deleted" for r in home.ledger.records()) == 1


def test_delete_drops_a_bundle_of_the_session_still_queued(home: Home) -> None:
    session, other = closed_session(home), closed_session(home)
    for sid in (session, other):
        approve(home, sid)
    outbox = Outbox(home.paths.db)
    try:
        head = home.ledger.head()
        assert head is not None
        outbox.add("bundle-of-deleted", session, head[0], b"sealed bundle")
        outbox.add("bundle-of-other", other, head[0], b"sealed bundle")
        sessions.delete(home, session)
        assert [q.name for q in outbox.queued()] == ["bundle-of-other"]
    finally:
        outbox.close()


def test_list_approves_what_the_hold_period_approved_first(home: Home) -> None:
    session = closed_session(home)
    ((info, due),) = sessions.list_sessions(home)
    assert (info.id, info.state) == (session, "pending")
    assert info.ended_ns is not None
    assert due is not None
    assert due > info.ended_ns
