"""A report read as people read it: Debian's headless Chromium renders the page,
its DOM is dumped or a screenshot taken."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

__all__ = ["browser_text", "screenshot", "visible"]


def browser_text(html: Path) -> str:
    """The page as Chromium rendered it, its DOM dumped."""
    done = subprocess.run(
        ["chromium", "--headless", "--disable-gpu", "--no-sandbox", "--dump-dom",
         html.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout


def screenshot(html: Path, png: Path, height: int = 2000) -> None:
    """A PNG of the page as Chromium draws it in a 1280 px wide window."""
    subprocess.run(
        ["chromium", "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
         f"--screenshot={png}", f"--window-size=1280,{height}", html.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    assert png.read_bytes().startswith(b"\x89PNG")


def visible(dom: str) -> str:
    """The dumped DOM's text: tags out, entities in, whitespace folded."""
    body = re.sub(r"<svg.*?</svg>", " ", dom, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", body)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
    return re.sub(r"\s+", " ", text.replace("&amp;", "&"))
