"""IP addresses and URLs that carry credentials."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from cleartrace.review.detectors.base import Finding, PiiCategory

__all__ = ["find_ip_addresses", "find_url_credentials"]

# Candidates are cut loosely and `ipaddress` decides. A dotted quad inside a
# longer dotted run ("1.2.3.4.5") or a wider number is not an address; a
# sentence's full stop after one is allowed.
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d|\w)")
# Eight hex groups, or fewer around one "::", optionally ending in a dotted
# quad. The look-arounds keep C++ scopes ("std::map") out; `ipaddress`
# rejects times and MAC addresses.
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:.])"
)
# At least one group of three or more hex digits: Python slices ("1::2") and
# short hex words around "::" parse as IPv6 but are not addresses.
_IPV6_LONG_GROUP = re.compile(r"[0-9A-Fa-f]{3}")
# Four-part version numbers are valid IPv4 addresses; the word before tells.
_VERSION_BEFORE = re.compile(r"(?:\bv|\bver\.?|\bversion|\brelease|\bbuild)\s*$", re.IGNORECASE)

# scheme://user:password@host: the span is "user:password", what a redactor
# must hide. A user name alone before "@" is an account, not a credential.
_USERINFO = re.compile(
    r"\b[A-Za-z][A-Za-z0-9+.-]*://(?P<userinfo>[^\s/?#@:]*:[^\s/?#@]+)@[^\s/?#@]"
)
# Secrets passed as query or fragment parameters (OAuth tokens, API keys,
# pre-signed URL signatures). The parameter must hang off a URL-like token
# (no space before "?" or "&") and its value must be at least four
# characters, so prose and placeholders such as "?key=1" stay out.
_QUERY_SECRET = re.compile(
    r"(?<=\S)[?&#;]"
    r"(?:access_token|refresh_token|id_token|auth_token|token|api_key|apikey|api-key|key"
    r"|client_secret|secret|password|passwd|pwd|sig|signature|x-amz-signature"
    r"|x-amz-credential|x-amz-security-token|session|sessionid|sid)"
    r"=(?P<value>[^\s&#;{}<>$\"']{4,})",
    re.IGNORECASE,
)


def find_ip_addresses(text: str) -> Iterator[Finding]:
    """Yield the IPv4 and IPv6 addresses in `text`.

    Loopback and unspecified addresses ("127.0.0.1", "::") identify nobody
    and are left out.
    """
    for m in _IPV4.finditer(text):
        if _VERSION_BEFORE.search(text, max(0, m.start() - 12), m.start()):
            continue
        if _is_identifying_ip(m.group()):
            yield Finding(PiiCategory.IP_ADDRESS, m.start(), m.end(), 0.8, "ipaddress.v4")
    if "::" not in text and text.count(":") < 7:
        return
    for m in _IPV6.finditer(text):
        if _IPV6_LONG_GROUP.search(m.group()) and _is_identifying_ip(m.group()):
            yield Finding(PiiCategory.IP_ADDRESS, m.start(), m.end(), 0.85, "ipaddress.v6")


def _is_identifying_ip(candidate: str) -> bool:
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return not (address.is_loopback or address.is_unspecified)


def find_url_credentials(text: str) -> Iterator[Finding]:
    """Yield credentials embedded in URLs: "user:password@" and secret parameters."""
    if "://" in text:
        for m in _USERINFO.finditer(text):
            start, end = m.span("userinfo")
            yield Finding(PiiCategory.URL_CREDENTIALS, start, end, 0.95, "regex.url_userinfo")
    if "=" in text:
        for m in _QUERY_SECRET.finditer(text):
            start, end = m.span("value")
            yield Finding(PiiCategory.URL_CREDENTIALS, start, end, 0.85, "regex.url_query")
