"""Reading the notice an organisation writes for `cleartrace org policy init --info FILE`.

The file is TOML (read with the standard library's `tomllib`) because the
people who write it are privacy officers, not programmers: it allows comments
and needs no quoting of keys. Its keys are those of the policy's `notice`
object (docs/policy-format.md); a key left out means "not stated" (null, an
empty list, or no commitment). Controller and purposes cannot be left out:
without them a person cannot know who is responsible or why.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from cleartrace.consent.notice import NOTICE_FIELDS, Notice
from cleartrace.errors import UsageError
from cleartrace.paths import read_input

__all__ = ["read_info"]

#: A notice is a page of text; a far larger file is not one (and is not parsed).
_MAX_BYTES = 64 * 1024
_LISTS = ("purposes", "recipients")


def read_info(path: Path) -> Notice:
    """The notice in the TOML file `path`.

    Raises:
        UsageError: the file cannot be read, is not TOML, has an unknown key,
            lacks controller name or contact or purposes, or a value has the
            wrong shape; the message names the file and what to fix.
    """
    raw = read_input(path, _MAX_BYTES)
    if len(raw) > _MAX_BYTES:
        raise UsageError(f"{path} is larger than {_MAX_BYTES} bytes: not a notice")
    try:
        data: dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(
            f"{path} is not valid TOML ({exc}); fix it (docs/policy-format.md shows one)"
        ) from None
    for name in NOTICE_FIELDS:
        if name not in data:
            data[name] = [] if name in _LISTS else False if name.startswith("no_") else None
    return Notice.from_dict(data, where=str(path))
