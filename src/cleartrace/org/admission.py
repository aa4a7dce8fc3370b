"""Who may send a bundle body, checked before it is held, and how it is read.

The request's signature (`upload.upload_auth`) names an enrolled device and
this bundle before anything of the body is read or reserved for; the
bundle header, at the body's start and by its own short deadline, must name
that device, its enrolled key and subject, and the served organisation key;
the body then arrives by its deadline and at a minimum rate (`org.intake`).
Each failure is a `Refusal` with a one-line reason.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from cleartrace.errors import BodyTooSlow, BundleError
from cleartrace.formats import unb64url
from cleartrace.org.answers import Refusal, declared_length, too_large, too_slow, too_slow_rate
from cleartrace.org.intake import RequestBody
from cleartrace.org.state import CollectorState
from cleartrace.upload.bundle_header import PREFIX, header_end, parse_header
from cleartrace.upload.upload_auth import AUTH_HEADER, MAX_CLOCK_SKEW, UploadAuth

__all__ = ["Admission", "not_enrolled"]


class Admission:
    """The checks and reads before a bundle body is held, with the collector's limits."""

    def __init__(
        self,
        registry: CollectorState,
        *,
        org_key: str | None,
        body_timeout: float,
        header_timeout: float,
        min_body_rate: float,
    ) -> None:
        self.registry = registry
        #: Fingerprint of the organisation key the served policy names (None: any).
        self.org_key = org_key
        self.body_timeout = body_timeout
        self.header_timeout = header_timeout
        #: Bytes a second a body must keep up with once `header_timeout` has passed.
        self.min_body_rate = min_body_rate

    def body(self, request: Request) -> RequestBody:
        """The request's body, to be read against this collector's deadlines and rate."""
        return RequestBody(
            request,
            asyncio.get_running_loop().time() + self.body_timeout,
            min_rate=self.min_body_rate,
            grace=self.header_timeout,
        )

    def authenticate(self, value: str | None, name: str) -> str:
        """The enrolled device that signed this upload request (`upload.upload_auth`).

        Checked before any of the body is read or reserved for: a copied
        bundle header, or a request signed for another bundle, gets nothing.

        Raises:
            Refusal: no or a malformed signature, a time too far from the
                collector's clock, a device not enrolled, a bad signature.
        """
        try:
            auth = UploadAuth.parse(value)
        except ValueError:
            raise Refusal(
                401,
                "no-auth",
                f"an upload must carry {AUTH_HEADER}, signed with the enrolled device key; "
                "update ClearTrace on the device",
            ) from None
        now = time.time()
        skew = auth.skew(now)
        if abs(skew) > MAX_CLOCK_SKEW:
            raise Refusal(
                401,
                "clock-skew",
                f"the device's clock is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} "
                f"the collector's (at most {MAX_CLOCK_SKEW} s allowed); set the device's clock "
                "(enable network time) and upload again",
                extra={"collector_time": int(now)},
            )
        device = self.registry.device("sha256:" + auth.device_hex)
        if device is None:
            raise not_enrolled()
        if not auth.signed_by(device.public_key, "PUT", name):
            raise Refusal(
                401,
                "bad-auth",
                f"{AUTH_HEADER} is not the enrolled device's signature for this bundle",
            )
        return device.device

    async def admit(self, body: RequestBody, size: int, device: str) -> None:
        """Check the bundle header, from the body's first bytes, against the signer.

        The header is read by its own deadline (`header_timeout`), much shorter
        than the body's: it is at the start and small.
        """
        deadline = asyncio.get_running_loop().time() + self.header_timeout
        try:
            prefix = await self._read_some(body, PREFIX, size, deadline)
            end = header_end(prefix)
            if end > size:
                raise Refusal(400, "truncated", "the bundle is shorter than its header says")
            header, _ = parse_header(await self._read_some(body, end, size, deadline))
        except BundleError as exc:
            raise Refusal(400, exc.reason, str(exc)) from None
        if header["device"] != device:
            raise Refusal(
                403,
                "device-mismatch",
                f"the bundle names another device than the one that signed {AUTH_HEADER}",
            )
        await run_in_threadpool(self.check_sender, header)

    async def _read_some(
        self, body: RequestBody, at_least: int, limit: int, deadline: float | None = None
    ) -> bytes:
        try:
            return await body.peek(at_least, limit, deadline)
        except BodyTooSlow as exc:
            raise self._too_slow(exc) from None
        except ValueError:
            raise too_large(limit) from None

    def _too_slow(self, exc: BodyTooSlow) -> Refusal:
        if exc.rule == "header-timeout":
            return too_slow(self.header_timeout, exc.rule)
        if exc.rule == "body-too-slow":
            return too_slow_rate(self.min_body_rate)
        return too_slow(self.body_timeout, exc.rule)

    async def read_body(self, body: RequestBody, request: Request, limit: int) -> bytearray:
        """The whole body, refusing more than `limit` bytes or a body too slow.

        The declared length is checked before reading anything; the bytes are
        counted as they come, so a missing or false length does not help.
        """
        declared_length(request, limit)
        try:
            return await body.read(limit)
        except BodyTooSlow as exc:
            raise self._too_slow(exc) from None
        except ValueError:
            raise too_large(limit) from None

    def check_sender(self, header: dict[str, Any]) -> None:
        """The header names an enrolled device, by its key and subject, and the served org key.

        Raises:
            Refusal: not enrolled, another key or subject, or another organisation key.
        """
        device = self.registry.device(str(header["device"]))
        if device is None:
            raise not_enrolled()
        if device.public_key != unb64url(header["device_public_key"]):
            raise Refusal(403, "key-mismatch", "the bundle's device key is not the enrolled one")
        if self.org_key is not None and header["org_key"] != self.org_key:
            raise Refusal(
                403,
                "wrong-org-key",
                "the bundle is sealed to another organisation key than the policy this "
                "collector serves names; the device's policy was replaced, enrol it again",
            )
        if header["subject"] != device.subject:
            raise Refusal(
                403,
                "subject-mismatch",
                "the bundle names another subject than the device enrolled with; enrol again",
            )


def not_enrolled() -> Refusal:
    return Refusal(
        403,
        "not-enrolled",
        "the device that signed this bundle is not enrolled; enrol it with "
        "'cleartrace enroll' and a token from the organisation",
    )
