"""Exclusions: the policy's defaults, the personal list, and their ledger records."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable

import pytest

from cleartrace.consent.exclusions import (
    DEFAULT_EXCLUSIONS,
    Exclusions,
    PersonalExclusions,
    add_exclusion,
    list_exclusions,
    load_exclusions,
    normalise_app,
    remove_exclusion,
    seal_plaintext_list,
)
from cleartrace.consent.ledger import Ledger
from cleartrace.consent.policy import DEFAULT_POLICY
from cleartrace.errors import StoreCorrupt, UsageError

#: Every application class the brief names, as WM_CLASS spells it in the wild.
MUST_BE_EXCLUDED = [
    "KeePassXC",
    "keepass2",
    "Bitwarden",
    "1Password",
    "Enpass",
    "lastpass",
    "Pinentry",
    "pinentry-gtk-2",
    "Pinentry-qt",
    "Gcr-prompter",
    "polkit-gnome-authentication-agent-1",
    "polkit-kde-authentication-agent-1",
    "lxpolkit",
    "ssh-askpass",
    "ksshaskpass",
    "x11-ssh-askpass",
    "lxqt-sudo",
    "XScreenSaver",
    "light-locker",
    "i3lock",
    "xsecurelock",
    "gnome-screensaver",
]


@pytest.mark.parametrize("app", MUST_BE_EXCLUDED)
def test_defaults_exclude_password_managers_prompts_and_lockers(app: str) -> None:
    assert load_exclusions(None).is_excluded(app)


MASTER = secrets.token_bytes(32)


@pytest.fixture
def personal(ledger: Ledger) -> PersonalExclusions:
    return PersonalExclusions.open(ledger, MASTER)


def test_default_exclusions_are_the_policy_ones_in_lower_case() -> None:
    assert frozenset(DEFAULT_POLICY.exclusions) == DEFAULT_EXCLUSIONS
    assert all(name == name.casefold() for name in DEFAULT_EXCLUSIONS)


def test_matching_is_case_insensitive_on_class_or_instance() -> None:
    ex = Exclusions(frozenset({"SshAskpass", "slack"}))
    assert ex.is_excluded("sshaskpass")
    assert ex.is_excluded("Firefox", "SLACK")
    assert ex.is_excluded(None, "sshASKPASS")
    assert not ex.is_excluded("firefox", "Navigator")
    assert not ex.is_excluded(None)
    assert not ex.is_excluded("")
    assert "Slack" in ex
    assert len(ex) == 2


def test_add_list_and_remove_a_personal_exclusion_with_ledger_records(
    ledger: Ledger, personal: PersonalExclusions
) -> None:
    assert add_exclusion(ledger, personal, "  Slack ") == "slack"
    assert ("slack", "personal") in list_exclusions(personal)
    assert load_exclusions(personal).is_excluded("SLACK")
    assert remove_exclusion(ledger, personal, "SLACK") == "slack"
    assert ("slack", "personal") not in list_exclusions(personal)
    assert not load_exclusions(personal).is_excluded("slack")
    tag = personal.tag("slack")
    assert [(r["kind"], r["app_tag"]) for r in ledger.records()] == [
        ("app.excluded", tag),
        ("app.included", tag),
    ]
    assert "slack" not in str(ledger.records())


def test_list_shows_defaults_first_then_personal_sorted(
    ledger: Ledger, personal: PersonalExclusions
) -> None:
    add_exclusion(ledger, personal, "zoom")
    add_exclusion(ledger, personal, "Microsoft Teams - Preview")
    rows = list_exclusions(personal)
    assert rows[: len(DEFAULT_POLICY.exclusions)] == [
        (app, "default") for app in DEFAULT_POLICY.exclusions
    ]
    assert rows[len(DEFAULT_POLICY.exclusions) :] == [
        ("microsoft teams - preview", "personal"),
        ("zoom", "personal"),
    ]


def test_adding_twice_is_an_error_and_records_nothing_more(
    ledger: Ledger, personal: PersonalExclusions
) -> None:
    add_exclusion(ledger, personal, "slack")
    with pytest.raises(UsageError, match="already one of your exclusions"):
        add_exclusion(ledger, personal, "Slack")
    with pytest.raises(UsageError, match="already excluded by the policy"):
        add_exclusion(ledger, personal, "KeePassXC")
    assert len(ledger.records()) == 1


def test_removing_a_default_says_defaults_come_from_the_policy(
    ledger: Ledger, personal: PersonalExclusions
) -> None:
    with pytest.raises(UsageError, match="defaults come from the policy"):
        remove_exclusion(ledger, personal, "KeePassXC")
    assert load_exclusions(personal).is_excluded("keepassxc")
    assert ledger.records() == []


def test_removing_an_unknown_exclusion_is_an_error(
    ledger: Ledger, personal: PersonalExclusions
) -> None:
    with pytest.raises(UsageError, match="not one of your exclusions"):
        remove_exclusion(ledger, personal, "slack")
    assert ledger.records() == []


@pytest.mark.parametrize("app", ["", "   ", "tab\there", "x" * 129, "new\nline"])
def test_names_that_are_not_application_classes_are_refused(
    ledger: Ledger, personal: PersonalExclusions, app: str
) -> None:
    with pytest.raises(UsageError, match="xprop WM_CLASS"):
        add_exclusion(ledger, personal, app)
    assert ledger.records() == []


def test_a_policy_without_defaults_lets_the_person_own_every_exclusion(
    ledger: Ledger, personal: PersonalExclusions
) -> None:
    bare = dataclasses.replace(DEFAULT_POLICY, id="bare", exclusions=())
    add_exclusion(ledger, personal, "keepassxc", bare)
    assert list_exclusions(personal, bare) == [("keepassxc", "personal")]
    remove_exclusion(ledger, personal, "keepassxc", bare)
    assert not load_exclusions(personal, bare).is_excluded("keepassxc")


def test_normalised_names_are_lower_case_and_trimmed() -> None:
    assert normalise_app("  Google-chrome ") == "google-chrome"


def test_a_plaintext_list_from_an_older_version_is_sealed_and_its_table_dropped(
    ledger: Ledger,
) -> None:
    ledger.conn.execute("CREATE TABLE exclusions (app TEXT PRIMARY KEY)")
    ledger.conn.executemany("INSERT INTO exclusions(app) VALUES (?)", [("slack",), ("zoom",)])
    assert seal_plaintext_list(ledger, MASTER)
    assert not seal_plaintext_list(ledger, MASTER)
    personal = PersonalExclusions.open(ledger, MASTER)
    assert [app for app, source in list_exclusions(personal) if source == "personal"] == [
        "slack",
        "zoom",
    ]
    tables = {n for (n,) in ledger.conn.execute("SELECT name FROM sqlite_master")}
    assert "exclusions" not in tables
    ledger.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert b"slack" not in ledger.path.read_bytes()
    assert ledger.records() == []  # moving the list is not an act of the person


def test_tags_and_names_open_only_with_the_master_key_they_were_made_with(
    ledger: Ledger, personal: PersonalExclusions, open_ledger: Callable[[], Ledger]
) -> None:
    add_exclusion(ledger, personal, "slack")
    again = PersonalExclusions.open(open_ledger(), MASTER)
    assert again.tag("slack") == personal.tag("slack")
    assert again.names() == ["slack"]
    with pytest.raises(StoreCorrupt, match="exclusions key"):
        PersonalExclusions.open(ledger, secrets.token_bytes(32))
    ledger.conn.execute("UPDATE excluded_apps SET tag=?", (personal.tag("zoom"),))
    with pytest.raises(StoreCorrupt, match="does not open"):
        personal.names()
    assert "slack" not in repr(personal)


def test_the_ledger_no_longer_writes_records_that_carry_a_name(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="carry a name"):
        ledger.append("exclusion.added", app="slack")
    assert ledger.records() == []
