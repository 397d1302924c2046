"""The README's pictures and the tool that takes them (tools/screenshots.py), with no browser.

Feature codes: doc001 the tool takes exactly the pictures README.md shows, in its order, and
each is in docs/; doc002 `make screenshots` runs the tool; doc003 the demo's video server gets
a run of free ports.
"""

from __future__ import annotations

import re
import socket

from dashboard.config import ROOT
from tools.demo import free_ports
from tools.screenshots import SHOTS


def test_doc001_the_tool_takes_the_pictures_the_readme_shows() -> None:
    readme = (ROOT / "README.md").read_text()
    shown = re.findall(r"!\[[^\]]*\]\(docs/([\w-]+)\.png\)", readme)
    assert shown, "README.md shows no picture"
    assert len(shown) == len(set(shown)), "a picture shown twice"
    assert [s.name for s in SHOTS] == shown
    for name in shown:
        assert (ROOT / "docs" / f"{name}.png").is_file(), name
    # nothing else in docs/ that the README no longer shows
    assert sorted(p.stem for p in (ROOT / "docs").glob("*.png")) == sorted(shown)


def test_doc002_make_screenshots_runs_the_tool() -> None:
    makefile = (ROOT / "Makefile").read_text()
    rule = re.search(r"^screenshots:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert rule is not None and "-m tools.screenshots" in rule.group(1)
    assert re.search(r"^\.PHONY:.*\bscreenshots\b", makefile, re.M)


def test_doc003_free_ports_are_a_free_run() -> None:
    first = free_ports(4)
    for port in range(first, first + 4):
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # free: binds
