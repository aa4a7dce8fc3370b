"""Fixtures: an organisation with a running collector, and a device enrolled with it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cleartrace.categories import Category
from cleartrace.consent.signed_policy import active_policy
from cleartrace.consent.state import give
from cleartrace.home import Home
from cleartrace.paths import Paths
from tests.support.orgkit import Org, enrolled


@pytest.fixture
def device(org: Org, private_home: Paths) -> Iterator[Home]:
    """A device enrolled with `org`, consent given to every category."""
    home = enrolled(org, private_home)
    give(home.ledger, frozenset(Category), active_policy(private_home))
    yield home
    home.close()
