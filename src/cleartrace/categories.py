"""The data categories a person consents to, one by one."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from cleartrace.errors import ConsentError

__all__ = ["DEPENDS_ON", "Category", "parse_categories"]


class Category(StrEnum):
    KEYS = "keys"
    MOUSE_MOVE = "mouse_move"
    CLICKS = "clicks"
    SCROLL = "scroll"
    APP_FOCUS = "app_focus"
    WINDOW_TITLES = "window_titles"


#: A title without the application it belongs to is meaningless.
DEPENDS_ON: dict[Category, Category] = {Category.WINDOW_TITLES: Category.APP_FOCUS}


def parse_categories(names: Iterable[str]) -> frozenset[Category]:
    """Parse category names given by a user.

    Raises:
        ConsentError: a name is not a category.
    """
    out = set()
    for name in names:
        try:
            out.add(Category(name))
        except ValueError:
            known = ", ".join(c.value for c in Category)
            raise ConsentError(f"unknown category '{name}'; choose from: {known}") from None
    return frozenset(out)
