"""What an upload withholds of detected personal data, and what a release lets through."""

from __future__ import annotations

import dataclasses

from cleartrace.categories import PiiCategory
from cleartrace.consent.policy import DEFAULT_POLICY, Policy
from cleartrace.events import Event, Kind, keysym_of_char
from cleartrace.review.text import reconstruct
from cleartrace.review.withheld import (
    Detection,
    detections,
    scrub_titles,
    typed_away,
    withhold,
)

EMAIL = "jane.doe@example.org"
PHONE = "+49 30 12345678"
TEXT = f"mail {EMAIL} about order 4711 or call {PHONE} today"
STARTED = 1_800_000_000 * 10**9  # wall clock of the session's start
ANCHOR = 5 * 10**9  # the monotonic clock at that moment


def typed(text: str) -> list[Event]:
    out = [Event(ANCHOR, Kind.FOCUS, app="Gedit", title="notes")]
    for i, ch in enumerate(text):
        t = ANCHOR + 10**9 + i * 90_000_000
        out += [Event(t, Kind.KEY_DOWN, keysym_of_char(ch)), Event(t + 40_000_000, Kind.KEY_UP)]
    return out


def found(events: list[Event], policy: Policy = DEFAULT_POLICY, **kw: object) -> list[Detection]:
    (stream,) = detections(events, policy, started_ns=STARTED, anchor_ns=ANCHOR, **kw)  # type: ignore[arg-type]
    return stream


def without(events: list[Event], positions: frozenset[int] | set[int]) -> list[Event]:
    return [e for i, e in enumerate(events) if i not in positions]


def test_the_upload_leaves_out_every_detection_and_nothing_else() -> None:
    events = typed(TEXT)
    spans = found(events)
    assert [(d.finding.category, d.withheld) for d in spans] == [
        (PiiCategory.EMAIL, True),
        (PiiCategory.PHONE, True),
    ]
    out = withhold([spans])
    assert out.spans == {"email": 1, "phone": 1}
    (left,) = reconstruct(without(events, out.positions))
    assert left.text == "mail  about order 4711 or call  today"
    assert out.interval is not None
    assert out.interval["start"] < out.interval["end"]
    assert out.interval["start"].startswith("2027-01-15T08:")  # STARTED on the wall clock


def test_only_the_kinds_the_policy_withholds_are_left_out() -> None:
    emails_only = dataclasses.replace(DEFAULT_POLICY, auto_redact=(PiiCategory.EMAIL,))
    spans = found(typed(TEXT), emails_only)
    # Review still shows the phone number (the policy flags it), but it leaves.
    assert [(d.finding.category, d.withheld) for d in spans] == [
        (PiiCategory.EMAIL, True),
        (PiiCategory.PHONE, False),
    ]
    assert withhold([spans]).spans == {"email": 1}
    nothing = dataclasses.replace(DEFAULT_POLICY, auto_redact=())
    assert withhold([found(typed(TEXT), nothing)]).empty


def test_a_released_detection_leaves_as_typed() -> None:
    events = typed(TEXT)
    phone = found(events)[1]
    spans = found(events, released=frozenset({phone.key}))
    assert [d.withheld for d in spans] == [True, False]
    (left,) = reconstruct(without(events, withhold([spans]).positions))
    assert left.text == f"mail  about order 4711 or call {PHONE} today"


def test_a_release_names_the_same_typing_after_other_text_is_redacted() -> None:
    events = typed(TEXT)
    email, phone = found(events)
    # The person redacts the e-mail address for good: offsets move, times do not.
    shorter = without(events, email.positions)
    (again,) = found(shorter, released=frozenset({phone.key}))
    assert again.finding.start < phone.finding.start
    assert again.key == phone.key
    assert not again.withheld


def test_a_release_no_longer_matches_when_the_detection_itself_changed() -> None:
    events = typed(TEXT)
    email = found(events)[0]
    first = min(email.positions)  # the press of the "j"
    changed = without(events, {first, first + 1})
    spans = found(changed, released=frozenset({email.key}))
    assert spans[0].finding.category == PiiCategory.EMAIL
    assert spans[0].key != email.key
    assert spans[0].withheld  # doubt withholds


def test_a_release_is_keyed_by_kind_and_time_never_by_text() -> None:
    email = found(typed(TEXT))[0]
    kind, start, end = email.key
    assert kind == "email"
    for part in (start, end):
        assert EMAIL not in part
        assert part.endswith("Z")


def test_personal_data_in_window_titles_is_cut_out_and_counted_on_every_focus_event() -> None:
    title = f"Inbox - {EMAIL} - Thunderbird"
    events = [
        Event(1, Kind.FOCUS, app="Thunderbird", title=title),
        Event(2, Kind.FOCUS, app="Xterm", title="~/src"),
        Event(3, Kind.FOCUS, app="Thunderbird", title=title),
    ]
    out, spans = scrub_titles(events, DEFAULT_POLICY)
    assert [e.title for e in out] == [
        "Inbox - ⟦email⟧ - Thunderbird",
        "~/src",
        "Inbox - ⟦email⟧ - Thunderbird",
    ]
    assert [e.app for e in out] == ["Thunderbird", "Xterm", "Thunderbird"]
    assert spans == {"email": 2}
    untouched, none = scrub_titles(events, dataclasses.replace(DEFAULT_POLICY, auto_redact=()))
    assert untouched == events
    assert none == {}


def test_an_address_typed_across_a_visit_to_another_window_is_left_out() -> None:
    events: list[Event] = []
    t = ANCHOR
    for app, part in (("Gedit", "mail jane.doe@exa"), ("Firefox", "hi"), ("Gedit", "mple.org ok")):
        events.append(Event(t, Kind.FOCUS, app=app, title=app.lower()))
        for ch in part:
            t += 90_000_000
            events += [Event(t, Kind.KEY_DOWN, keysym_of_char(ch)), Event(t + 1, Kind.KEY_UP)]
    per_stream = detections(events, DEFAULT_POLICY, started_ns=STARTED, anchor_ns=ANCHOR)
    out = withhold(per_stream)
    assert out.spans == {"email": 1}
    left = reconstruct(without(events, out.positions))
    assert [s.text for s in left] == ["mail ", "hi", " ok"]
    # Releasing it (named by either part) lets the whole address through, once.
    part = per_stream[2][0]
    released = detections(
        events,
        DEFAULT_POLICY,
        started_ns=STARTED,
        anchor_ns=ANCHOR,
        released=frozenset({part.key}),
    )
    assert withhold(released).empty


def test_an_address_typed_then_deleted_again_does_not_leave() -> None:
    from cleartrace.review.keysyms import BACKSPACE

    events = typed(EMAIL)
    t = events[-1].t_ns
    for _ in EMAIL:
        t += 90_000_000
        events += [Event(t, Kind.KEY_DOWN, BACKSPACE), Event(t + 1, Kind.KEY_UP, BACKSPACE)]
    out = withhold([found(events)]) | typed_away(
        events, DEFAULT_POLICY, started_ns=STARTED, anchor_ns=ANCHOR
    )
    assert out.spans == {"email": 1}
    left = without(events, out.positions)
    # Its BackSpaces went too (the test's releases carry no key, so they stay).
    assert [e for e in left if e.kind is Kind.KEY_DOWN] == []
    typed_keys = "".join(chr(e.a) for e in left if e.kind is Kind.KEY_DOWN and e.a < 0x7F)
    assert EMAIL not in typed_keys


def test_deleted_typing_goes_but_the_text_around_it_comes_out_the_same() -> None:
    from cleartrace.review.keysyms import BACKSPACE

    events = typed(f"hello {EMAIL}")
    t = events[-1].t_ns
    for _ in EMAIL:
        t += 90_000_000
        events += [Event(t, Kind.KEY_DOWN, BACKSPACE), Event(t + 1, Kind.KEY_UP, BACKSPACE)]
    for ch in "bye":
        t += 90_000_000
        events += [Event(t, Kind.KEY_DOWN, keysym_of_char(ch)), Event(t + 1, Kind.KEY_UP)]
    out = typed_away(events, DEFAULT_POLICY, started_ns=STARTED, anchor_ns=ANCHOR)
    assert out.spans == {"email": 1}
    (left,) = reconstruct(without(events, out.positions))
    assert left.text == "hello bye"
    # Typing that stayed is the search of the text's own business.
    kept = typed(TEXT)
    assert typed_away(kept, DEFAULT_POLICY, started_ns=STARTED, anchor_ns=ANCHOR).empty


def test_typing_over_erased_typing_stays() -> None:
    events = typed(EMAIL)
    t = events[-1].t_ns + 90_000_000
    ctrl, a = 0xFFE3, keysym_of_char("a")
    for key, kind in (
        (ctrl, Kind.KEY_DOWN),
        (a, Kind.KEY_DOWN),
        (a, Kind.KEY_UP),
        (ctrl, Kind.KEY_UP),
    ):
        t += 1_000
        events.append(Event(t, kind, key))
    for ch in "ok":  # types over the whole selection
        t += 90_000_000
        events += [Event(t, Kind.KEY_DOWN, keysym_of_char(ch)), Event(t + 1, Kind.KEY_UP)]
    out = typed_away(events, DEFAULT_POLICY, started_ns=STARTED, anchor_ns=ANCHOR)
    assert out.spans == {"email": 1}
    (left,) = reconstruct(without(events, out.positions))
    assert left.text == "ok"


def test_removing_all_detected_data_removes_one_typed_in_parts_too() -> None:
    from cleartrace.review.redaction import by_pii

    events: list[Event] = []
    t = ANCHOR
    for app, part in (("Gedit", "mail jane.doe@exa"), ("Firefox", "hi"), ("Gedit", "mple.org ok")):
        events.append(Event(t, Kind.FOCUS, app=app, title=app.lower()))
        for ch in part:
            t += 90_000_000
            events += [Event(t, Kind.KEY_DOWN, keysym_of_char(ch)), Event(t + 1, Kind.KEY_UP)]
    chosen = by_pii("s" * 32, events)
    assert [s.text for s in reconstruct(without(events, chosen.positions))] == [
        "mail ",
        "hi",
        " ok",
    ]
