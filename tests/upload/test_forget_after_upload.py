"""`cleartrace forget` over a session already uploaded says what that means."""

from __future__ import annotations

import pytest

from cleartrace.cli import main
from cleartrace.home import Home
from cleartrace.upload.uploader import Retry, Uploader
from tests.support.orgkit import approve, record_session


def test_forget_says_an_uploaded_session_is_dropped_by_the_organisation(
    device: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    session = record_session(device, n_keys=5)
    approve(device, session)
    Uploader(device.paths, device.keys, retry=Retry(attempts=2, base=0.01, cap=0.01)).run()
    assert device.store.session(session).state == "uploaded"
    capsys.readouterr()
    assert main(["forget", "--last", "15m"]) == 0
    err = capsys.readouterr().err
    assert "11 events removed for good from sessions 1 uploaded" in err
    assert "the organisation drops them from uploaded sessions" in err
