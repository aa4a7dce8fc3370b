"""Short random secrets typed or pasted bare: tokens that mix character classes.

detect-secrets' entropy plugins (in `tokens`) need runs of twenty or more
Base64 or hex characters; a generated password such as "q8R#v2Lm!x0P" is
shorter and holds symbols outside those alphabets. Words, identifiers,
versions, paths and reference numbers mix classes too, but in runs: one
word or acronym with numbers ("requests==2.31.0", "INV-2024-00123"), or
words of several letters each ("McDonald's", "getUserById2"). A random
token switches class often, its letters fall into chunks of one or two,
and it repeats few characters. The test is those measures, on tokens of
10 to 64 characters that mix at least three of lower case, upper case,
digits and symbols.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterator

from cleartrace.review.detectors.base import Finding, PiiCategory

__all__ = ["find_mixed_tokens"]

_TOKEN = re.compile(r"(?<!\S)\S{10,64}(?!\S)")
_MIN_LENGTH = 10
_MIN_CLASSES = 3
# A random token over three or four classes changes class at one character
# in two or more and has close to log2(length) bits per character; words
# and numbers change class rarely and repeat characters.
_MIN_SWITCH_RATE = 0.3
_MIN_BITS_PER_CHAR = 3.0
# Letters cut into words where the case goes up ("getUserById": get,
# User, By, Id), an acronym counting as one word, and into chunks where
# each capital not starting a lower-case run stands alone. Words and
# identifiers give chunks of nearly three letters or more on average; a
# random token over both cases gives chunks of less than two.
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
_MIN_WORDS = 2
_CHUNK = re.compile(r"[A-Z]?[a-z]+|[A-Z]")
_MAX_MEAN_CHUNK = 2.5
# In one case only ("CONFIG_NAME_V2", "ab3$kq9!xz2m"), the chunks are the
# runs of letters.
_RUN = re.compile(r"[A-Za-z]+")
_UPPER = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")
# Below a password typed in a login window (0.5), so that a field there
# keeps its category; above a login form's field typed anywhere (0.4).
_CONFIDENCE = 0.45
# Shapes that mix classes by nature: URLs, UUIDs and other hex with dashes,
# e-mail addresses (their own detector reports them).
_EXEMPT = re.compile(
    r"[a-z][a-z0-9+.-]*://|^www\.|^[0-9a-fA-F]+(?:-[0-9a-fA-F]+)+$|^[^@\s]+@[\w-]+\.[\w.-]+$"
)
_SENTENCE_END = ".,;:)"


def find_mixed_tokens(text: str) -> Iterator[Finding]:
    """Yield whitespace-separated tokens that look randomly generated."""
    for m in _TOKEN.finditer(text):
        start, end = m.span()
        while end - start > _MIN_LENGTH and text[end - 1] in _SENTENCE_END:
            end -= 1
        if _looks_random(text[start:end]):
            yield Finding(PiiCategory.SECRET, start, end, _CONFIDENCE, "entropy.mixed_class")


def _looks_random(token: str) -> bool:
    if len(token) < _MIN_LENGTH or _EXEMPT.search(token):
        return False
    classes = [_class_of(c) for c in token]
    if len(set(classes)) < _MIN_CLASSES:
        return False
    switches = sum(a != b for a, b in itertools.pairwise(classes))
    if switches < _MIN_SWITCH_RATE * (len(token) - 1):
        return False
    if len(_WORD.findall(token)) < _MIN_WORDS:
        return False  # one word or acronym with numbers: "requests==2.31.0", "INV-2024-00123"
    chunks = (_CHUNK if _UPPER.search(token) and _LOWER.search(token) else _RUN).findall(token)
    if sum(map(len, chunks)) / len(chunks) > _MAX_MEAN_CHUNK:
        return False  # words: "McDonald's", "iPhone15Pro", "getUserById2"
    counts = Counter(token).values()
    bits = -sum(n / len(token) * math.log2(n / len(token)) for n in counts)
    return bits >= _MIN_BITS_PER_CHAR


def _class_of(char: str) -> int:
    if char.isdigit():
        return 0
    if char.isupper():
        return 1
    if char.islower():
        return 2
    return 3
