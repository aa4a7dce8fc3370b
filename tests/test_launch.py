"""The program's entry point: the tray is its default command, Qt loads only for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cleartrace.cli import main


def test_the_program_loads_no_qt_until_the_tray_is_asked_for() -> None:
    code = (
        "import sys, cleartrace.launch; cleartrace.launch.cli.build_parser(); "
        "print('PySide6' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_the_cli_alone_cannot_start_the_tray(capsys: pytest.CaptureFixture[str]) -> None:
    # Only the program's entry point (cleartrace.launch) may reach the UI layer.
    assert main(["tray"]) == 2
    assert "the tray app starts from the 'cleartrace' program" in capsys.readouterr().err


def test_the_program_starts_the_tray_when_no_command_is_given(tmp_path: Path) -> None:
    # No display here: the tray app itself is reached and says so in one line.
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-m", "cleartrace"],
        capture_output=True,
        text=True,
        env={**env, "HOME": str(tmp_path), "CLEARTRACE_HOME": str(tmp_path / "home")},
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("cleartrace: cannot start the tray: no display")
    assert "Traceback" not in done.stderr


def test_a_thread_that_outlives_the_tray_does_not_crash_the_exit() -> None:
    # A thread that is still running Python code when the interpreter
    # finalises is what crashed a quit: the program leaves without finalising.
    code = (
        "import logging, threading, time\n"
        "from cleartrace.launch import leave_if_threads_remain\n"
        "logging.basicConfig(level=logging.WARNING)\n"
        "def busy():\n"
        "    while True:\n"
        "        time.sleep(0.001)\n"
        "threading.Thread(target=busy, name='straggler', daemon=True).start()\n"
        "leave_if_threads_remain(3, grace=0.1)\n"
        "print('finalised')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 3, done.stderr
    assert "finalised" not in done.stdout
    assert "threads still running at exit (straggler)" in done.stderr


def test_with_every_thread_ended_the_exit_is_the_ordinary_one() -> None:
    code = (
        "from cleartrace.launch import leave_if_threads_remain\n"
        "leave_if_threads_remain(3, grace=0.1)\n"
        "print('finalised')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "finalised"
