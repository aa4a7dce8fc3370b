"""A collector (or a proxy in front of it) answering with a redirect sends nothing further:
the enrolment token and bundles go only to the address the person was given
(real HTTP servers on 127.0.0.1)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleartrace.errors import UploadError
from cleartrace.upload.client import CollectorClient


@dataclass
class Server:
    """A stdlib HTTP server in a thread that answers every request with `status`."""

    status: int
    location: str = ""
    seen: list[tuple[str, str, bytes]] = field(default_factory=list)
    httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.httpd is not None
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                server.seen.append((self.command, self.path, self.rfile.read(length)))
                body = b'{"device": "x", "subject": "y"}'
                self.send_response(server.status)
                if server.location:
                    self.send_header("Location", server.location + self.path)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def do_PUT(self) -> None:
                self._answer()

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep pytest's output clean

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()


@pytest.fixture
def elsewhere() -> Iterator[Server]:
    """Where a hostile redirect points: it must never hear from the device."""
    server = Server(200)
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=[301, 302, 303, 307, 308])
def redirecting(request: pytest.FixtureRequest, elsewhere: Server) -> Iterator[Server]:
    server = Server(request.param, location=elsewhere.url)
    server.start()
    yield server
    server.stop()


def test_a_redirected_enrolment_does_not_carry_the_token_elsewhere(
    redirecting: Server, elsewhere: Server
) -> None:
    client = CollectorClient(redirecting.url)
    try:
        with pytest.raises(UploadError, match="redirect") as raised:
            client.enroll({"token": "the-enrolment-token", "public_key": "k"})
    finally:
        client.close()
    assert not raised.value.retryable
    assert [(m, p) for m, p, _ in redirecting.seen] == [("POST", "/v1/enroll")]
    assert elsewhere.seen == []


def test_redirected_bundles_and_head_queries_go_nowhere_else(
    redirecting: Server, elsewhere: Server
) -> None:
    client = CollectorClient(redirecting.url)
    try:
        with pytest.raises(UploadError, match="redirect"):
            client.head("ab" * 32)
        with pytest.raises(UploadError, match="redirect"):
            client.put_bundle("cd" * 32, b"CTBUNDLE sealed bytes", Ed25519PrivateKey.generate())
    finally:
        client.close()
    assert len(redirecting.seen) == 2
    assert elsewhere.seen == []
