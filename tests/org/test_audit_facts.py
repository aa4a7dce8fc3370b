"""The fold of one device's signed ledger into the audit's consent and compliance facts."""

from __future__ import annotations

import json

from cleartrace.org.audit_facts import ledger_facts
from tests.support.ingest_world import ALL, POLICY, Device, World, at

POLICY2 = {"id": "acme", "version": 2, "sha256": "3" * 64}
SESSION = "a" * 32
SESSION2 = "b" * 32


def stamp(minutes: float) -> str:
    return at(minutes).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_an_empty_ledger_has_no_consent_and_no_acts() -> None:
    facts = ledger_facts([])
    assert facts["records"] == 0
    assert facts["consent"] == []
    assert facts["policies"] == []
    assert all(
        v == {"consented": [], "paused": [], "withdrawn": []} for v in facts["categories"].values()
    )
    assert facts["approvals"] == {"person": 0, "hold_period": 0}
    assert facts["deletions"] == 0
    assert facts["uploads"] == 0
    assert facts["auto_redactions"] == {}


def test_consent_pause_and_withdrawal_become_intervals_per_category(world: World) -> None:
    d: Device = world.device()
    d.give(at(0), ["keys", "clicks"])
    d.act("recording.paused", at(10), until=None)
    d.act("recording.resumed", at(20), reason="person")
    d.act("consent.withdrawn", at(30), categories=["keys"], policy=POLICY)
    d.act("consent.given", at(40), categories=["keys", "scroll"], policy=POLICY2)
    d.act("consent.refused", at(50), categories=["scroll"], policy=POLICY2)
    d.act("recording.paused", at(60), until=None)
    facts = ledger_facts(d.ledger.records())
    cats = facts["categories"]
    assert cats["keys"] == {
        "consented": [
            {"start": stamp(0), "end": stamp(10)},
            {"start": stamp(20), "end": stamp(30)},
            {"start": stamp(40), "end": stamp(60)},
        ],
        "paused": [{"start": stamp(10), "end": stamp(20)}, {"start": stamp(60), "end": None}],
        "withdrawn": [stamp(30)],
    }
    assert cats["clicks"] == {
        "consented": [
            {"start": stamp(0), "end": stamp(10)},
            {"start": stamp(20), "end": stamp(60)},
        ],
        "paused": [{"start": stamp(10), "end": stamp(20)}, {"start": stamp(60), "end": None}],
        "withdrawn": [],
    }
    # Refused, not withdrawn: the interval ends, no withdrawal is counted.
    assert cats["scroll"] == {
        "consented": [{"start": stamp(40), "end": stamp(50)}],
        "paused": [],
        "withdrawn": [],
    }
    assert cats["mouse_move"] == {"consented": [], "paused": [], "withdrawn": []}
    assert facts["consented_now"] == ["clicks", "keys"]
    assert facts["paused_now"] is True
    assert [
        (c["kind"], c["time"], c["categories"], c["policy"]["version"]) for c in facts["consent"]
    ] == [
        ("given", stamp(0), ["keys", "clicks"], 1),
        ("withdrawn", stamp(30), ["keys"], 1),
        ("given", stamp(40), ["keys", "scroll"], 2),
        ("refused", stamp(50), ["scroll"], 2),
    ]
    assert facts["policies"] == [
        {**POLICY, "given": [stamp(0)], "refused": [], "withdrawn": [stamp(30)]},
        {**POLICY2, "given": [stamp(40)], "refused": [stamp(50)], "withdrawn": []},
    ]


def test_a_clock_gone_backwards_takes_the_previous_records_time(world: World) -> None:
    d = world.device()
    d.give(at(10), ["keys"])
    d.act("consent.withdrawn", at(5), categories=["keys"], policy=POLICY)
    facts = ledger_facts(d.ledger.records())
    assert facts["categories"]["keys"]["consented"] == [{"start": stamp(10), "end": stamp(10)}]
    assert facts["categories"]["keys"]["withdrawn"] == [stamp(10)]


def test_acts_are_counted_and_spans_summed(world: World) -> None:
    d = world.device()
    d.give(at(0), ALL)
    for session in (SESSION, SESSION2):
        d.act("session.started", at(1), session=session)
        d.act("session.ended", at(2), session=session)
    d.act("session.approved", at(3), session=SESSION, by="person")
    d.act("session.approved", at(3), session=SESSION2, by="hold_period")
    d.act("session.held", at(3), session=SESSION2)
    interval = {"start": stamp(1), "end": stamp(2)}
    d.act(
        "session.redacted",
        at(4),
        session=SESSION,
        method="span",
        events=7,
        categories=["keys"],
        interval=interval,
    )
    d.act(
        "session.redacted",
        at(4),
        session=SESSION,
        method="time",
        events=3,
        categories=["keys"],
        interval=interval,
    )
    d.act("upload.redacted", at(5), session=SESSION, spans={"email": 2, "phone": 1})
    d.act("upload.redacted", at(5), session=SESSION2, spans={"email": 1})
    d.act("detection.released", at(5), session=SESSION, pii="email", interval=interval)
    d.act("bundle.uploaded", at(6), bundle="c" * 64, witnessed={"seq": 12, "hash": "d" * 64})
    d.act("app.excluded", at(6), app_tag="e" * 64)
    d.act("session.deleted", at(7), session=SESSION2)
    facts = ledger_facts(d.ledger.records())
    assert facts["records"] == 16
    assert facts["sessions"] == 2
    assert facts["approvals"] == {"person": 1, "hold_period": 1}
    assert facts["holds"] == 1
    assert facts["deletions"] == 1
    assert facts["redactions"] == {"count": 2, "events": 10}
    assert facts["auto_redactions"] == {"email": 3, "phone": 1}
    assert facts["releases"] == 1
    assert facts["uploads"] == 1
    assert facts["apps_excluded"] == 1
    assert facts["first"] == stamp(0)
    assert facts["last"] == stamp(7)
    # Counts and times only: no session id, bundle name or app tag is in the facts.
    text = json.dumps(facts)
    for secret in (SESSION, SESSION2, "c" * 64, "e" * 64):
        assert secret not in text
