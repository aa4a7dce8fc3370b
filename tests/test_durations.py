from __future__ import annotations

import pytest

from cleartrace.durations import parse_duration
from cleartrace.errors import UsageError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("1h", 3600), ("1h30m", 5400), ("0.5s", 0.5)],
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "15x", "-5", "0s", "1h-", "m15"])
def test_bad_durations_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text)


@pytest.mark.parametrize("text", ["15", "0.5", "90"])
def test_a_bare_number_needs_a_unit(text: str) -> None:
    with pytest.raises(UsageError, match=f"{text} needs a unit: write {text}s, {text}m"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["-5m", "-5", "-1h30m"])
def test_a_negative_duration_says_so(text: str) -> None:
    with pytest.raises(UsageError, match="a duration cannot be negative"):
        parse_duration(text)
