from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from cleartrace.cli import build_parser, main
from tests.support import REPO
from tests.support.cli import CLI, ct

DOCS = REPO / "docs" / "cli.md"


def _commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append((*prefix, name))
                out.extend(_commands(sub, (*prefix, name)))
    return out


def _runs(parser: argparse.ArgumentParser, words: tuple[str, ...]) -> bool:
    """Whether `cleartrace WORDS` does something itself (a group may too: `org audit`)."""
    for word in words:
        (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = sub.choices[word]
    return parser.get_default("func") is not None


COMMANDS = _commands(build_parser())


def test_every_documented_heading_is_a_command_and_back() -> None:
    headings = set(re.findall(r"^## cleartrace ?(.*)$", DOCS.read_text(), re.MULTILINE))
    parser = build_parser()
    leaves = {
        " ".join(c)
        for c in COMMANDS
        if not any(o[: len(c)] == c and o != c for o in COMMANDS) or _runs(parser, c)
    }
    assert leaves <= headings, f"undocumented: {sorted(leaves - headings)}"
    assert headings - {""} <= leaves, f"documented but missing: {sorted(headings - leaves - {''})}"


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"cleartrace {' '.join(command)}" in out
    assert len(out.splitlines()) >= 3


def test_version_is_printed() -> None:
    done = ct("--version")
    assert re.fullmatch(r"cleartrace \d+\.\d+\.\d+\n", done.stdout)


def test_bad_usage_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["consent", "give"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("cleartrace: ")
    assert len(err.strip().splitlines()) == 1


def test_unknown_category_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["consent", "give", "--category", "screenshots"]) == 2
    err = capsys.readouterr().err
    assert "unknown category 'screenshots'" in err
    assert "Traceback" not in err


def test_the_cli_loads_no_upload_server_or_dataset_library_until_asked() -> None:
    # Every command pays for what the CLI imports: `status` must stay quick.
    heavy = ("pyarrow", "requests", "starlette", "uvicorn", "boto3", "PySide6")
    code = (
        "import sys, cleartrace.cli; cleartrace.cli.build_parser(); "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("command", [("status",), ("ledger", "show", "--json")])
def test_a_reader_that_stops_early_ends_the_command_quietly(
    command: tuple[str, ...], private_home: object
) -> None:
    ct("consent", "give", "--all")
    proc = subprocess.Popen(
        [*CLI, *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the first line is written
    _, err = proc.communicate(timeout=60)
    assert err == b""
    assert proc.returncode == 128 + 13  # as a tool ended by SIGPIPE
