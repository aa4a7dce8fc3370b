"""What the recorder makes of a focused window: excluded, or what of it may be
stored under the categories recorded now.

Called on the focus thread for every focus change; the writer then drops
every event that went to an excluded window (see `capture.resolve`).
"""

from __future__ import annotations

from cleartrace.capture.timeline import UNKNOWN, FocusedWindow, FocusState
from cleartrace.categories import Category
from cleartrace.consent.exclusions import Exclusions

__all__ = ["judge_window"]


def judge_window(
    window: FocusedWindow | None, exclusions: Exclusions, active: frozenset[Category]
) -> FocusState:
    """None (the window vanished before it could be read) is unknown, and
    unknown is treated as excluded. The window is excluded when its class or
    instance, or those of a window it is transient for or of its client
    leader, name an excluded application. Otherwise its application and its
    geometry are kept with app_focus among `active`, its title with
    window_titles too; nothing of an excluded window is.
    """
    if window is None:
        return UNKNOWN
    if any(exclusions.is_excluded(cls, instance) for cls, instance in window.names):
        return FocusState(True, None)
    if Category.APP_FOCUS not in active:
        return FocusState(False, None)
    title = window.title if Category.WINDOW_TITLES in active else None
    return FocusState(False, (window.app, title), window.geometry)
