"""One tray per home: a second start reaches the first and exits 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

from pytestqt.qtbot import QtBot

from cleartrace.paths import Paths
from cleartrace.ui.single_instance import SingleInstance, instance_name
from tests.support.cli import CLI
from tests.support.waiting import wait_for


def test_a_second_instance_reaches_the_first(qtbot: QtBot, private_home: Paths) -> None:
    private_home.runtime.mkdir(parents=True, exist_ok=True)
    first = SingleInstance(private_home)
    assert not first.ask_first_to_raise()  # nobody there yet
    assert first.listen()
    try:
        second = SingleInstance(private_home)
        with qtbot.waitSignal(first.raiseRequested, timeout=5_000):
            assert second.ask_first_to_raise()
    finally:
        first.close()


def test_a_socket_left_by_a_crash_is_taken_over(qtbot: QtBot, private_home: Paths) -> None:
    private_home.runtime.mkdir(parents=True, exist_ok=True)
    name = instance_name(private_home)
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(name)  # bound, never listening, never unlinked: what a crash leaves
    assert Path(name).exists()
    first = SingleInstance(private_home)
    assert not first.ask_first_to_raise()
    assert first.listen()
    first.close()


def test_the_name_is_per_home_short_and_in_the_private_runtime_dir(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    a = instance_name(Paths(home=tmp_path / "a", runtime=runtime))
    b = instance_name(Paths(home=tmp_path / "b", runtime=runtime))
    assert a != b
    assert Path(a).parent == runtime
    assert len(Path(a).name) < 40


def test_a_second_cleartrace_tray_exits_0_and_the_first_comes_forward(
    private_home: Paths,
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY"}}
    env["QT_QPA_PLATFORM"] = "offscreen"  # no tray here: the status window stands in
    cmd = [*CLI, "tray"]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:

        def listening() -> bool:
            assert first.poll() is None, first.communicate()
            return Path(instance_name(private_home)).exists()

        wait_for(listening, timeout=30, what="the first tray listening")
        second = subprocess.run(cmd, env=env, capture_output=True, timeout=60, check=False)
        assert second.returncode == 0, second.stderr
        first.send_signal(signal.SIGTERM)  # logout: quits like the menu does
        _, err = first.communicate(timeout=30)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    log = private_home.log.read_text()
    assert "a second start asked this instance to come forward" in log
    assert "tray stopped" in log
