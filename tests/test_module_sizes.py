"""Modules stay small enough to read in one sitting: under 400 lines each.

A module that grows past it mixes responsibilities; cut it by what it does,
not by line count. Only pure data tables are exempt.
"""

from __future__ import annotations

from pathlib import Path

import cleartrace

LIMIT = 400
#: Pure data tables: a longer table is not a longer thought.
DATA_TABLES = {"review/keysyms.py"}


def test_every_module_is_under_the_limit() -> None:
    root = Path(cleartrace.__file__).parent
    sizes = {
        path.relative_to(root).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in root.rglob("*.py")
    }
    assert len(sizes) > 100  # the package was found
    over = {name: n for name, n in sizes.items() if n > LIMIT and name not in DATA_TABLES}
    assert over == {}
