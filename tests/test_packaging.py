"""A built wheel carries what the app finds beside it: the state icons,
PRIVACY.md and the desktop entry (not only a source checkout has them)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _build_wheel(tmp_path: Path) -> Path:
    """A wheel built from a copy of the tracked files, so the build leaves
    nothing in the checkout."""
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    src = tmp_path / "src"
    for name in filter(None, (n.decode() for n in tracked)):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path / "out"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(src), "-w", str(out)],
        capture_output=True,
        check=True,
        timeout=300,
    )
    (wheel,) = out.glob("cleartrace-*.whl")
    return wheel


def test_the_wheel_ships_the_icons_privacy_notice_and_desktop_entry(tmp_path: Path) -> None:
    names = set(zipfile.ZipFile(_build_wheel(tmp_path)).namelist())
    data = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".data"))
    share = f"{data}/data/share"
    icons = sorted(p.name for p in (ROOT / "resources" / "icons").glob("*.svg"))
    assert icons
    for icon in icons:
        assert f"{share}/cleartrace/resources/icons/{icon}" in names
    assert f"{share}/cleartrace/PRIVACY.md" in names
    assert f"{share}/applications/cleartrace.desktop" in names
    # The paths are where ui/icons.find_file looks under sys.prefix.
    assert "cleartrace/ui/icons.py" in names


def test_the_installed_desktop_entry_names_an_icon_installed_beside_it(tmp_path: Path) -> None:
    """Menus look an entry's `Icon=` name up in the icon theme of the same data
    directories they found the entry in (XDG icon theme spec): installed to a
    prefix, the wheel puts both under its share/."""
    wheel, prefix = _build_wheel(tmp_path), tmp_path / "prefix"
    # --ignore-installed: without it pip first uninstalls the checkout's own
    # (editable) install from the environment running the tests.
    install = ["install", "--no-deps", "--ignore-installed", "-q", "--prefix", str(prefix)]
    subprocess.run(
        [sys.executable, "-m", "pip", *install, wheel],
        capture_output=True,
        check=True,
        timeout=300,
    )
    share = prefix / "share"
    entry = (share / "applications" / "cleartrace.desktop").read_text(encoding="utf-8")
    icons = [line.split("=", 1)[1] for line in entry.splitlines() if line.startswith("Icon=")]
    assert icons == ["cleartrace"]  # a theme name, not a path: the prefix is not known
    icon = share / "icons" / "hicolor" / "scalable" / "apps" / "cleartrace.svg"
    assert icon.read_bytes().lstrip().startswith(b"<svg")
