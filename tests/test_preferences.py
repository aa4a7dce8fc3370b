"""Preferences: the hold period within the policy's bounds and the session
length within its bounds, through the CLI too."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cleartrace.cli import main
from cleartrace.consent.policy import DEFAULT_POLICY
from cleartrace.errors import UsageError
from cleartrace.paths import Paths
from cleartrace.preferences import (
    TESTING_IDLE_S,
    TESTING_SESSION_S,
    boundaries,
    hold_days,
    min_inputs,
    save_hold_days,
    save_min_inputs,
    save_session_minutes,
    session_minutes,
    settings_file,
)


def test_the_policy_period_until_the_person_chooses(private_home: Paths) -> None:
    assert hold_days(private_home, DEFAULT_POLICY) == DEFAULT_POLICY.hold_days
    save_hold_days(private_home, 9, DEFAULT_POLICY)
    assert hold_days(private_home, DEFAULT_POLICY) == 9
    assert oct(settings_file(private_home).stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("days", [-1, DEFAULT_POLICY.hold_days_max + 1])
def test_outside_the_bounds_is_refused_and_nothing_changes(private_home: Paths, days: int) -> None:
    with pytest.raises(UsageError, match="from 0 to 14 days"):
        save_hold_days(private_home, days, DEFAULT_POLICY)
    assert not settings_file(private_home).exists()


def test_a_policy_that_narrows_the_bounds_overrides_an_earlier_choice(private_home: Paths) -> None:
    save_hold_days(private_home, 1, DEFAULT_POLICY)
    stricter = dataclasses.replace(DEFAULT_POLICY, version=9, hold_days_min=2, hold_days=5)
    assert hold_days(private_home, stricter) == 5


def test_the_cli_shows_and_sets_it(private_home: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settings", "hold-days", "30"]) == 2
    assert main(["settings", "hold-days", "0"]) == 0
    assert main(["settings", "hotkey", "Ctrl+Alt+F9"]) == 0
    capsys.readouterr()
    assert main(["settings", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == {
        "hold_days": 0,
        "hold_days_bounds": [0, 14],
        "pause_hotkey": "Ctrl+Alt+F9",
        "session_minutes": 60,
        "session_minutes_bounds": [15, 240],
        "min_inputs": 1,
        "min_inputs_bounds": [0, 1000],
    }
    assert main(["settings", "hotkey", "q"]) == 2  # a bare key would pause on every "q"


def test_a_session_runs_an_hour_until_the_person_chooses(private_home: Paths) -> None:
    assert session_minutes(private_home) == 60
    assert boundaries(private_home, {}).session_s == 3600
    assert boundaries(private_home, {}).idle_s == 300
    save_session_minutes(private_home, 15)
    assert boundaries(private_home, {}).session_s == 15 * 60


@pytest.mark.parametrize("minutes", [14, 241])
def test_a_session_length_outside_the_bounds_is_refused(private_home: Paths, minutes: int) -> None:
    with pytest.raises(UsageError, match="from 15 to 240 minutes"):
        save_session_minutes(private_home, minutes)
    assert not settings_file(private_home).exists()


def test_only_the_testing_variables_shorten_the_boundaries(private_home: Paths) -> None:
    env = {TESTING_SESSION_S: "2.5", TESTING_IDLE_S: "1"}
    assert boundaries(private_home, env).session_s == 2.5
    assert boundaries(private_home, env).idle_s == 1
    assert boundaries(private_home, {TESTING_SESSION_S: "-1"}).session_s == 3600


def test_the_cli_sets_the_session_length(
    private_home: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["settings", "session-minutes", "600"]) == 2
    assert "from 15 to 240 minutes" in capsys.readouterr().err
    assert main(["settings", "session-minutes", "30"]) == 0
    assert "30 minutes" in capsys.readouterr().err
    assert main(["settings", "show"]) == 0
    assert "session length: 30 minutes (you may choose 15 to 240)" in capsys.readouterr().out


def test_a_session_needs_one_input_to_be_kept_until_the_person_chooses(
    private_home: Paths,
) -> None:
    assert min_inputs(private_home) == 1
    assert boundaries(private_home, {}).min_inputs == 1
    save_min_inputs(private_home, 0)
    assert boundaries(private_home, {}).min_inputs == 0
    with pytest.raises(UsageError, match=r"from 0 \(keep every session\) to 1000"):
        save_min_inputs(private_home, -1)
    assert min_inputs(private_home) == 0


def test_the_cli_sets_the_fewest_inputs_a_session_needs(
    private_home: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["settings", "min-inputs", "1001"]) == 2
    assert "from 0 (keep every session) to 1000" in capsys.readouterr().err
    assert main(["settings", "min-inputs", "0"]) == 0
    assert "every session is now kept" in capsys.readouterr().err
    assert main(["settings", "min-inputs", "5"]) == 0
    assert "fewer than 5 inputs" in capsys.readouterr().err
    assert main(["settings", "show"]) == 0
    assert "keep a session: 5 inputs" in capsys.readouterr().out
