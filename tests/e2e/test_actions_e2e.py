"""From a person's work to training rows on real processes: two editors (two
applications) on Xvfb under a window manager, typed into, clicked, dragged and
scrolled by xdotool; recorded with consent to everything but typing rhythm and
titles, approved, uploaded to a collector on 127.0.0.1 and ingested. The
dataset must be the script: the events table holds every key in the
application it went to, every button and wheel step where it was pressed,
each typing run's key events at one interval (its rhythm stayed on the
device); the actions table is the script's actions in order, with their
application, window, positions on the monitor, text, keys and code, each
traced to its events and its consent; the files the editors saved hold what
was typed."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from cleartrace.paths import Paths
from tests.support.cli import ct
from tests.support.orgkit import Org
from tests.support.recording import Recording, sessions, status
from tests.support.text_window import TextField
from tests.support.waiting import wait_for
from tests.support.xserver import XServer

pytestmark = pytest.mark.xserver

#: The two applications: editors with classes of their own.
A, B = "Scribe", "Jotter"
#: Xvfb's screen (tests/support/xserver.py): one monitor.
WIDTH, HEIGHT = 1280, 800
#: Longer than events.TYPING_PAUSE_NS (2 s): the steps of the script are
#: separate actions. Paced input, the subject of the test (a person's pause).
PAUSE_S = 2.5
#: Categories consented to: all input, the focused application, no titles and
#: not typing rhythm (its key timing leaves the device evened out).
CONSENTED = ("keys", "clicks", "scroll", "mouse_move", "app_focus")

CTRL_S = ("ctrl+s",)


@dataclass(frozen=True)
class Step:
    """One step of the script, in one application: the xdotool commands run back
    to back, and what the dataset must hold for them.

    `typed` are strings typed and tuples of key names (xdotool's) pressed, in
    order; `pointer` one xdotool command line of the mouse; `buttons` the
    button presses it makes as (x, y, button); `scrolls` its wheel steps as
    (x, y, dy); `action` the row of the actions table the step makes.
    """

    app: str
    typed: tuple[str | tuple[str, ...], ...] = ()
    pointer: str = ""
    buttons: tuple[tuple[int, int, int], ...] = ()
    scrolls: tuple[tuple[int, int, int], ...] = ()
    action: dict[str, Any] = field(default_factory=dict)

    def commands(self) -> list[tuple[str, ...]]:
        runs: list[tuple[str, ...]] = []
        for part in self.typed:
            if isinstance(part, str):
                runs.append(("type", "--delay", "15", part))
            else:
                runs.append(("key", "--delay", "15", *part))
        if self.pointer:
            runs.append(tuple(self.pointer.split()))
        return runs

    def presses(self) -> list[str]:
        """The keys pressed, as the events table names them (char, else key)."""
        out: list[str] = []
        for part in self.typed:
            if isinstance(part, str):
                out += list(part)
            else:
                for combo in part:
                    out += [MODIFIERS.get(k, k) for k in combo.split("+")]
        return out


#: xdotool's modifier names, as the keys they press.
MODIFIERS = {"ctrl": "Control_L", "shift": "Shift_L", "alt": "Alt_L"}


def typing(text: str) -> dict[str, Any]:
    """A `type` action: the text as the editor shows it, corrections applied."""
    return {"action": "type", "text": text, "keys": None, "code": f"pyautogui.write({text!r})"}


def pointer(action: str, code: str, x: int, y: int, **more: Any) -> dict[str, Any]:
    """A pointer action at x, y, with its place on the one monitor as fractions of it."""
    return {
        "action": action, "x": x, "y": y, "x_norm": x / WIDTH, "y_norm": y / HEIGHT,
        "code": f"pyautogui.{code}", **more,
    }  # fmt: skip


SAVE = {"action": "hotkey", "keys": "ctrl+s", "code": "pyautogui.hotkey('ctrl', 's')"}
SENTENCE = "the quick brown fox jumps over the lazy dog."
MORE = "and then some more."
NOTE = "notes for tomorrow"

#: The script. Clicks land on A's only line of text or below it (the window
#: fills the screen): the double-click selects a word, the drag some text,
#: the last click puts the cursor at the end again, so Return starts a line.
SCRIPT = (
    Step(
        A,
        typed=(
            "the quikc",
            ("BackSpace", "BackSpace"),
            "ck brown fox jumps ovr",
            ("BackSpace",) * 3,
            "over teh",
            ("BackSpace",) * 3,
            "the lazy dog.",
        ),
        action=typing(SENTENCE),
    ),
    Step(
        A,
        pointer="mousemove 100 25 click --repeat 2 --delay 80 1",
        buttons=((100, 25, 1), (100, 25, 1)),
        action=pointer("double_click", "doubleClick(100, 25)", 100, 25, button="left"),
    ),
    Step(
        A,
        pointer="mousemove 20 25 mousedown 1 sleep 0.1 mousemove 200 25 sleep 0.1 mouseup 1",
        buttons=((20, 25, 1),),
        action=pointer(
            "drag",
            "moveTo(20, 25); pyautogui.dragTo(200, 25, button='left')",
            20,
            25,
            to_x=200,
            to_y=25,
            to_x_norm=200 / WIDTH,
            to_y_norm=25 / HEIGHT,
            button="left",
        ),
    ),
    Step(
        A,
        pointer="mousemove 640 400 click --repeat 3 --delay 60 5",
        scrolls=((640, 400, -1),) * 3,
        action=pointer("scroll", "scroll(-3, x=640, y=400)", 640, 400, dx=0, dy=-3),
    ),
    Step(
        A,
        pointer="mousemove 960 600 click 1",
        buttons=((960, 600, 1),),
        action=pointer("click", "click(960, 600)", 960, 600, button="left"),
    ),
    Step(A, typed=(CTRL_S,), action=SAVE),
    Step(
        A,
        typed=(("Return",),),
        action={"action": "key", "keys": "enter", "code": "pyautogui.press('enter')"},
    ),
    Step(
        A,
        typed=("and thne", ("BackSpace",) * 2, "en some more."),
        action=typing(MORE),
    ),
    Step(A, typed=(CTRL_S,), action=SAVE),
    Step(
        B,
        typed=("notes for tomorow", ("BackSpace",) * 3, "rrow"),
        action=typing(NOTE),
    ),
    Step(B, typed=(CTRL_S,), action=SAVE),
)

#: What each editor saved last: the script's text, corrections applied.
SAVED = {A: f"{SENTENCE}\n{MORE}", B: NOTE}

#: The actions table's columns the script decides (times and lineage: against the events).
COLUMNS = (
    "episode", "step", "app", "title", "window_x", "window_y", "window_width", "window_height",
    "action", "x", "y", "to_x", "to_y", "button", "dx", "dy", "text", "keys", "code",
)  # fmt: skip
#: The window of every action: the window manager gives each editor the whole
#: screen; no title, as titles were not consented to.
WINDOW = {"window_x": 0, "window_y": 0, "window_width": WIDTH, "window_height": HEIGHT}
#: The same positions as fractions of the monitor, from the session's screen layout.
NORMALISED = ("x_norm", "y_norm", "to_x_norm", "to_y_norm")


def expected_actions() -> list[dict[str, Any]]:
    """The actions table of the session, in order: each step's, in its application
    (null where its action has no such field). An episode is a focus segment: the
    recording starts in A (episode 1, after the session's first focus event), then B."""
    out: list[dict[str, Any]] = []
    episode, step, app = 0, 0, None
    for s in SCRIPT:
        if s.app != app:
            episode, step, app = episode + 1, 0, s.app
        row = {"episode": episode, "step": step, "app": s.app, **WINDOW, **s.action}
        out.append({c: row.get(c) for c in (*COLUMNS, *NORMALISED)})
        step += 1
    return out


ACTIONS = expected_actions()


@dataclass
class Desk:
    """The display, its two editors (by application) and the files they save to."""

    x: XServer
    editors: dict[str, TextField]
    files: dict[str, Path]


@pytest.fixture
def desk(xserver: XServer, wm: None, tmp_path: Path) -> Iterator[Desk]:
    files = {app: tmp_path / f"{app.lower()}.txt" for app in (A, B)}
    editors: dict[str, TextField] = {}
    try:
        for app in (B, A):  # A opened last: it has the focus when recording starts
            editors[app] = TextField(xserver.display, "plain", app, save_to=files[app])
        yield Desk(xserver, editors, files)
    finally:
        for editor in editors.values():
            editor.close()


def enroll(org: Org) -> None:
    ct(
        "enroll", "--collector", org.collector.url, "--policy", str(org.policy),
        "--token", org.collector.token(),
    )  # fmt: skip


def ingest(org: Org, dataset: Path) -> dict[str, Any]:
    data = org.collector.data
    done = ct(
        "org", "ingest", "--from", str(data), "--keys", str(org.keys_dir), "--out", str(dataset),
        "--witness-key", str(data / "witness.pub"), "--quiet", "--json",
    )  # fmt: skip
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def table(dataset: Path, name: str) -> list[dict[str, Any]]:
    """The rows of one of the dataset's tables, in file order (time order), as pyarrow
    reads them: one bundle made one Parquet file of each."""
    (path,) = sorted((dataset / name).glob("day=*/device=*/*.parquet"))
    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    return rows


#: The kinds of events an action of each category starts and ends with.
ENDS = {
    "keys": ("key_down", "key_up"),
    "clicks": ("button_down", "button_up"),
    "scroll": ("scroll", "scroll"),
}


def stored(paths: Paths, category: str) -> int:
    return int(status(paths)["counts"].get(category, 0))


def run_script(desk: Desk, xdo: Callable[..., str], paths: Paths) -> None:
    """The script, paced like a person; returns once every input is stored."""
    focused = A
    for step in SCRIPT:
        if step.app != focused:
            xdo("windowactivate", "--sync", desk.editors[step.app].window)
            wait_for(lambda app=step.app: status(paths)["application"] == app, what="the focus")
            focused = step.app
        for command in step.commands():
            xdo(*command)
        time.sleep(PAUSE_S)  # the person's pause between two actions
    presses = sum(len(s.presses()) for s in SCRIPT)
    buttons = sum(len(s.buttons) for s in SCRIPT)
    scrolls = sum(len(s.scrolls) for s in SCRIPT)
    # At least as many: the rows are what is checked, exactly, once ingested.
    wait_for(
        lambda: (
            stored(paths, "keys") >= 2 * presses
            and stored(paths, "clicks") >= 2 * buttons
            and stored(paths, "scroll") >= scrolls
        ),
        timeout=20,
        what="every input of the script stored",
    )


def test_the_dataset_is_the_script_typed_clicked_and_scrolled_in_two_applications(
    org: Org,
    desk: Desk,
    start_recorder: Callable[[], Recording],
    xdo: Callable[..., str],
    private_home: Paths,
    tmp_path: Path,
) -> None:
    enroll(org)
    ct("consent", "give", *(arg for c in CONSENTED for arg in ("--category", c)))
    xdo("windowactivate", "--sync", desk.editors[A].window)
    rec = start_recorder()
    wait_for(lambda: status(private_home)["application"] == A, what="A's focus")
    run_script(desk, xdo, private_home)
    rec.stop()
    for app, text in SAVED.items():
        assert desk.files[app].read_text() == text

    (session,) = sessions()
    ct("sessions", "approve", session["id"])
    ct("upload", "--now")
    records = json.loads(ct("ledger", "show", "--json").stdout)
    # The session's bundle says its key timing was evened out (a ledger-only one says none).
    uploaded = [r for r in records if r["kind"] == "bundle.uploaded"]
    assert [r["timing"] for r in uploaded if "timing" in r] == ["even"]
    dataset = tmp_path / "dataset"
    summary = ingest(org, dataset)
    assert summary["rejected"] == []
    assert summary["events"]["dropped"]["violation"] == 0

    events = table(dataset, "events")
    assert {r["session"] for r in events} == {session["id"]}
    assert [r["app"] for r in events if r["kind"] == "focus"] == [A, B]
    assert {r["title"] for r in events} == {None}  # titles were not consented to
    layout = [(r["kind"], r["x"], r["y"], r["width"], r["height"]) for r in events
              if r["kind"] in ("screen", "monitor")]  # fmt: skip
    assert layout == [("screen", None, None, WIDTH, HEIGHT), ("monitor", 0, 0, WIDTH, HEIGHT)]
    # Every key row names the application it was typed into.
    keys = [r for r in events if r["kind"] in ("key_down", "key_up")]
    assert {r["app"] for r in keys} == {A, B}
    for app in (A, B):
        pressed = [
            r["char"] or r["key"] for r in keys if r["app"] == app and r["kind"] == "key_down"
        ]
        assert pressed == [k for s in SCRIPT if s.app == app for k in s.presses()]
    buttons = [(r["x"], r["y"], r["button"]) for r in events if r["kind"] == "button_down"]
    assert buttons == [b for s in SCRIPT for b in s.buttons]
    scrolls = [(r["x"], r["y"], r["dy"]) for r in events if r["kind"] == "scroll"]
    assert scrolls == [s for step in SCRIPT for s in step.scrolls]
    # Without typing_rhythm every typing run left the device evened out: its key
    # events (presses and releases) follow each other at one interval.
    times = [r["time"] for r in keys]
    for number, step in enumerate(SCRIPT):
        run, times = times[: 2 * len(step.presses())], times[2 * len(step.presses()) :]
        gaps = {later - earlier for earlier, later in itertools.pairwise(run)}
        assert len(gaps) <= 1, f"step {number}: its key events at {len(gaps)} intervals"

    actions = table(dataset, "actions")
    assert [{c: r[c] for c in (*COLUMNS, *NORMALISED)} for r in actions] == ACTIONS
    # Lineage: each action's first and last event, and the consent it was captured under.
    (given,) = [r for r in records if r["kind"] == "consent.given"]
    (bundle,) = {r["bundle"] for r in events}
    for action in actions:
        first, last = events[action["first_event"]], events[action["last_event"]]
        assert (first["kind"], last["kind"]) == ENDS[action["category"]], action["action"]
        assert (first["time"], last["time"]) == (action["time"], action["end"])
        assert (action["bundle"], action["session"]) == (bundle, session["id"])
        assert action["consent_seq"] == given["seq"]
