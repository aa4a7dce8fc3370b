"""HTTP by hand against the collector, as hostile clients send it: a body declared
and never finished, an enrolment from a chosen source address, a response read
off a raw socket. An HTTP library would not send these.
"""

from __future__ import annotations

import http.client
import json
import socket
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.upload.bundle_header import header_end
from cleartrace.upload.upload_auth import AUTH_HEADER
from tests.support.org_device import Device, enrolment


def header_of(device: Device) -> bytes:
    """The start of a real bundle of `device`, up to its header's end: what a copier has."""
    _, raw, _ = device.bundle()
    return raw[: header_end(raw)]


def stalled_put(
    url: str,
    declared: int,
    sent: bytes,
    name: str = "ab" * 32,
    signer: Device | None = None,
    auth: str | None = None,
) -> socket.socket:
    """A PUT announcing `declared` bytes of which only `sent` are sent; the socket stays open.

    Signed by `signer` (the device's request signature), or with `auth` as it is.
    """
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "", parts.port or 80), timeout=20)
    if signer is not None:
        auth = signer.auth(name)[AUTH_HEADER]
    signed = f"{AUTH_HEADER}: {auth}\r\n" if auth is not None else ""
    sock.sendall(
        f"PUT /v1/bundles/{name} HTTP/1.1\r\nHost: c\r\n{signed}"
        f"Content-Length: {declared}\r\n\r\n".encode()
        + sent
    )
    return sock


def answer(sock: socket.socket) -> tuple[int, dict[str, str], dict[str, object]]:
    """Status, headers and JSON body of the response on `sock`."""
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = json.loads(response.read())
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def enrol_from(url: str, source: str, token: str) -> tuple[int, dict[str, str], str]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(
        parts.hostname or "", parts.port, timeout=20, source_address=(source, 0)
    )
    try:
        body = json.dumps(enrolment(Ed25519PrivateKey.generate(), token, None))
        conn.request("POST", "/v1/enroll", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        reason = json.loads(response.read())["reason"] if response.status != 201 else ""
        return response.status, {k.lower(): v for k, v in response.getheaders()}, reason
    finally:
        conn.close()
