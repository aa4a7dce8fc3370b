"""The state icons, and where files that live beside the package are found.

The icons are SVG files in the repository's `resources/icons/`, one per state,
each told apart by its shape (filled dot, two bars, ring, struck-through ring,
arrow) so that they read in grayscale and for people who do not see the
colours. `find_file()` looks for them, and for PRIVACY.md, in:

1. the source checkout this module runs from (`src/cleartrace/ui/` → the
   repository root), which is also where an editable install finds them;
2. `<sys.prefix>/share/cleartrace/`, where the wheel's data files install them
   (`share/cleartrace/resources/icons/*.svg`, `share/cleartrace/PRIVACY.md`;
   pyproject.toml's `data-files`), or the same under the user base
   (`~/.local/share/cleartrace/`) after `pip install --user`.

Where neither has an icon (a wheel installed without its data files), the
desktop theme's icon of the same meaning is used, and failing that Qt's own
standard icon, so the tray never shows an empty square.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QStyle

__all__ = ["STATES", "find_file", "icon_for"]

#: Icon states: every `Status.state`, plus "uploading" (shown while a bundle uploads).
STATES = ("recording", "paused", "off", "cannot record", "uploading")

_FILES = {
    "recording": "recording.svg",
    "paused": "paused.svg",
    "off": "off.svg",
    "cannot record": "cannot-record.svg",
    "uploading": "uploading.svg",
}
_THEME = {
    "recording": "media-record",
    "paused": "media-playback-pause",
    "off": "media-playback-stop",
    "cannot record": "dialog-error",
    "uploading": "go-up",
}
_STANDARD = {
    "recording": QStyle.StandardPixmap.SP_MediaPlay,
    "paused": QStyle.StandardPixmap.SP_MediaPause,
    "off": QStyle.StandardPixmap.SP_MediaStop,
    "cannot record": QStyle.StandardPixmap.SP_MessageBoxCritical,
    "uploading": QStyle.StandardPixmap.SP_ArrowUp,
}
_cache: dict[str, QIcon] = {}


def _roots() -> list[Path]:
    # The checkout, then where pip puts the wheel's data files: under the
    # environment's prefix, or under the user base for `pip install --user`.
    user = sysconfig.get_path("data", f"{os.name}_user")
    return [
        Path(__file__).resolve().parents[3],
        Path(sys.prefix) / "share" / "cleartrace",
        Path(user) / "share" / "cleartrace",
    ]


def find_file(relative: str) -> Path | None:
    """`relative` (e.g. "PRIVACY.md") in the checkout or the installed data; None if absent."""
    for root in _roots():
        path = root / relative
        if path.is_file():
            return path
    return None


def icon_for(state: str) -> QIcon:
    """The icon of a `Status.state` (an unknown state shows as "cannot record").

    Icons are loaded once and cached: the same state always gives an icon with
    the same `cacheKey()`, which is also how tests tell which one is shown.
    """
    if state not in _FILES:
        state = "cannot record"
    icon = _cache.get(state)
    if icon is None:
        path = find_file(f"resources/icons/{_FILES[state]}")
        icon = QIcon(str(path)) if path is not None else QIcon.fromTheme(_THEME[state])
        if icon.isNull():
            icon = QApplication.style().standardIcon(_STANDARD[state])
        _cache[state] = icon
    return icon
