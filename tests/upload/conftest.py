"""Fixtures: an organisation with a running collector, and a device enrolled with it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cleartrace.categories import Category
from cleartrace.consent.signed_policy import active_policy, read_signed_policy
from cleartrace.consent.state import give
from cleartrace.home import Home
from cleartrace.paths import Paths
from cleartrace.upload.enrolment import enrol
from orgkit import Org


@pytest.fixture
def device(org: Org, private_home: Paths) -> Iterator[Home]:
    """A device enrolled with `org`, consent given to every category."""
    home = Home.open(private_home, create=True)
    signed = read_signed_policy(org.policy.read_bytes())
    enrol(home, org.collector.url, signed, org.collector.token())
    give(home.ledger, frozenset(Category), active_policy(private_home))
    yield home
    home.close()
