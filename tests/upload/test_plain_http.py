"""Plain http:// reaches only a collector on this machine unless --insecure-http says otherwise."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from cleartrace.cli import main
from cleartrace.paths import Paths
from cleartrace.upload.client import check_transport
from tests.support.orgkit import Org, make_org


def loopback_alias() -> str:
    """A name for this machine that is not a loopback literal but resolves only to
    loopback (its host name, through /etc/hosts), or skip: the collector listens
    on this machine and no packet leaves it, yet the URL names "another host"."""
    name = socket.gethostname()
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_INET)
    except OSError:
        pytest.skip("this machine's host name does not resolve")
    if not name or name == "localhost" or any(not i[4][0].startswith("127.") for i in infos):
        pytest.skip("this machine's host name does not resolve only to loopback")
    return name


@pytest.fixture
def remote_org(tmp_path: Path) -> Iterator[Org]:
    """A collector whose policy names it by a host name, not a loopback address."""
    made = make_org(tmp_path / "org", host=loopback_alias())
    made.collector.start()
    yield made
    made.collector.stop()


def enrol_argv(org: Org, *extra: str) -> list[str]:
    token = org.collector.token()
    return [
        "enroll",
        "--collector",
        org.collector.url,
        "--policy",
        str(org.policy),
        "--token",
        token,
        *extra,
    ]


def test_loopback_addresses_may_be_plain_http() -> None:
    for url in (
        "http://127.0.0.1:8080",
        "http://127.3.2.1",
        "http://[::1]:9/",
        "http://localhost:8443",
        "http://LOCALHOST",
        "https://collector.example.org",
    ):
        check_transport(url, insecure_http=False)


def test_plain_http_to_another_host_is_refused_at_enrolment(
    remote_org: Org, private_home: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = enrol_argv(remote_org)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "plain http://" in err
    assert "--insecure-http" in err
    assert not (private_home.home / "enrolment.json").exists()
    # The token was not spent: the same one enrols with the flag.
    assert main([*argv, "--insecure-http"]) == 0, capsys.readouterr().err
    assert (private_home.home / "enrolment.json").exists()


def test_an_enrolment_file_naming_plain_http_elsewhere_uploads_nothing_without_the_flag(
    remote_org: Org, private_home: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*enrol_argv(remote_org), "--insecure-http"]) == 0
    assert main(["consent", "give", "--all"]) == 0
    before = remote_org.collector.bundles()
    capsys.readouterr()
    assert main(["upload", "--now"]) == 2
    assert "plain http://" in capsys.readouterr().err
    assert remote_org.collector.bundles() == before
    assert main(["upload", "--now", "--insecure-http", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bundles"] == remote_org.collector.bundles()
    assert remote_org.collector.bundles() != before


def test_a_loopback_enrolment_edited_to_name_another_host_is_refused(
    org: Org, private_home: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(enrol_argv(org)) == 0
    path = private_home.home / "enrolment.json"
    enrolment = json.loads(path.read_text())
    enrolment["collector"] = "http://192.0.2.7:8080"
    path.write_text(json.dumps(enrolment))
    capsys.readouterr()
    assert main(["upload"]) == 2
    assert "plain http://" in capsys.readouterr().err
