"""The README's pictures, taken as a newcomer first sees the demo: `make screenshots`.

    python -m tools.screenshots [--days N] [--alive S] [--only NAME ...] [--out DIR]

Starts the whole demo exactly as a first `make run` does (tools/demo.py: a fresh data folder,
the demo history, free ports), signs in as the demo's users in Debian's headless Chromium at
1920×1080, lets the wall run `--alive` seconds so it is alive, and saves `docs/<name>.png`
for every page in `SHOTS` (the README shows each; tests/tools/test_screenshots.py checks
that the two agree). Each page waits for what it must show (live data, playing cameras, a
drafted report…) and must not scroll; one that does not get there within its time fails
the run with a message saying which and why (exit status 1), after the others are taken.
Everything started is stopped at the end. PNGs are optimised losslessly with Pillow.
`--days` sets CC_DEMO_HISTORY_DAYS for a quick try (the pictures to commit use the default).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from dashboard.config import ROOT
from layouts import ids
from tools.browser import Browser, ShotError
from tools.demo import Demo, DemoError

DOCS: Final = ROOT / "docs"


@dataclass(frozen=True)
class Shot:
    """One picture: `docs/<name>.png`, taken as `role` (None: signed out) by `take`."""

    name: str
    role: str | None
    take: Callable[[Browser], None]


# --------------------------------------------------------------------------- the pages


def sign_in_page(b: Browser) -> None:
    b.open("/login")
    b.wait(lambda: b.driver.find_element("id", "cc-login-user").is_displayed(), "the form")
    time.sleep(1)  # the fonts


def wall(b: Browser, lang: str = "") -> None:
    """The whole city: a level I/II event arriving opens its panel on every wall, so the
    panel is closed and the map returned to the city, as the wall does by itself when
    left alone (`idleReturnS`)."""
    b.open("/" + (f"?lang={lang}" if lang else ""))
    b.live()
    b.wait(lambda: b.js("return ccwall.store.size('event') > 0"), "events on the wall")
    time.sleep(5)  # the counters and the lists settle after the snapshot
    for _ in range(3):
        close_panel(b)
        b.js("ccwall.mapview.fitCity()")
        time.sleep(2)  # the map's fit and its markers
        if not panel_open(b):
            return
    raise ShotError("level I/II events kept opening their panel over the city")


def panel_open(b: Browser) -> bool:
    """An event's panel is open (a level I/II event arriving opens its own)."""
    return bool(b.js(f"var x = document.getElementById('{ids.DETAIL_CLOSE}');"
                     "return !!x && x.offsetParent !== null"))


def close_panel(b: Browser) -> None:
    if panel_open(b):
        b.click(f"#{ids.DETAIL_CLOSE}")


def wall_en(b: Browser) -> None:
    wall(b, "en")


def _events(b: Browser, statuses: tuple[str, ...]) -> list[str]:
    """Open events with these statuses, gravest then newest first."""
    return b.js("""
        const out = [];
        ccwall.store.each('event', e => { if (arguments[0].includes(e.status)) out.push(e); });
        out.sort((a, z) => (a.severity - z.severity) || (z.ts - a.ts));
        return out.map(e => String(e.id));""", list(statuses))


def _best_event(b: Browser, statuses: tuple[str, ...], score: str) -> list[str]:
    """Open events with these statuses, best first by `score` (a JS expression of the
    event's details `d`, GET /api/events/<id>; at most 60 asked, the gravest and newest)."""
    return b.driver.execute_async_script(f"""
        const done = arguments[arguments.length - 1];
        const ids = arguments[0];
        Promise.all(ids.map(id => fetch('/api/events/' + encodeURIComponent(id))
            .then(r => r.ok ? r.json() : null).catch(() => null)))
          .then(rows => {{
            const got = [];
            rows.forEach((d, i) => {{ if (d) got.push([{score}, i, ids[i]]); }});
            got.sort((a, z) => (z[0] - a[0]) || (a[1] - z[1]));
            done(got.filter(g => g[0] > 0).map(g => g[2]));
          }});""", _events(b, statuses)[:60])


def video_panel(b: Browser) -> None:
    """An event's panel with the most cameras that see it, playing."""
    wall(b)
    playable = "['mjpeg', 'image', 'hls', 'mp4', 'webm']"
    score = (f"((d.nearby && d.nearby.cameras) || []).filter(c => c.online !== false &&"
             f" {playable}.includes(c.stream_type)).slice(0, 4).length")
    for event_id in _best_event(b, ("reported", "dispatched", "in_progress"), score)[:5]:
        b.js("ccwall.select(arguments[0], true)", event_id)
        try:
            b.wait(lambda: sum(s == "playing" for s in
                               b.js("return ccwall.video.panelStates()")) >= 3,
                   "cameras playing", 10)
        except ShotError:
            continue
        time.sleep(2)
        # a level I/II event arriving meanwhile takes the panel: then the next candidate
        if b.js("return ccwall.command.selected()") == event_id:
            return
    raise ShotError("no open event with three cameras playing in its panel")


def command_panel(b: Browser) -> None:
    """A commander's dispatch proposal for the newest event nobody dispatched yet."""
    wall(b)
    for event_id in _events(b, ("reported",))[:20]:
        b.js("ccwall.select(arguments[0], true)", event_id)
        try:
            b.wait(lambda: b.js(f"var e = document.getElementById('{ids.CMD_DISPATCH}');"
                                "return e && e.offsetParent !== null && !e.disabled"),
                   "the Dispatch button", 8)
            b.click(f"#{ids.CMD_DISPATCH}")
            b.wait(lambda: b.js("return document.querySelectorAll("
                                f"'#{ids.CMD_PROPOSAL_UNITS} li.cc-cmd-pick').length >= 3"),
                   "the proposal's units", 10)
        except ShotError:
            continue
        time.sleep(2)  # the ring and the lines on the map
        return
    raise ShotError("no undispatched event got a proposal")


def tracks(b: Browser) -> None:
    """The worker with the most fixes in the last eight hours (the panel's longest span
    button), their track over them, two thirds played."""
    wall(b)
    best = b.driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const ids = [];
        ccwall.store.each('worker', w => { if (w.status !== 'off_duty') ids.push(String(w.id)); });
        const to = Date.now(), from = to - 8 * 3600 * 1000;
        const get = id => fetch('/api/tracks/worker/' + encodeURIComponent(id) +
                                '?from=' + from + '&to=' + to);
        Promise.all(ids.slice(0, 300).map(id => get(id)
            .then(r => r.ok ? r.json() : null).catch(() => null)))
          .then(rows => {
            const got = rows.filter(r => r && r.points && r.points.length >= 5);
            got.sort((a, z) => z.points.length - a.points.length);
            const p = got.length ? got[0].points : null;
            done(p ? {id: got[0].id, from: p[0][0], to: p[p.length - 1][0]} : null);
          });""")
    if not best:
        raise ShotError("no worker with a track of five fixes")
    span = {"from": best["from"] - 30_000, "to": best["to"] + 30_000}
    for _ in range(3):
        close_panel(b)
        b.js("ccwall.tracks.open('worker', arguments[0], arguments[1])", best["id"], span)
        b.wait(lambda: b.js("return ccwall.tracks.probe().points") >= 5, "the track loaded")
        b.js("var s = document.querySelector('.cc-trk-slider');"
             "s.value = String(Math.round(s.max * 2 / 3));"
             "s.dispatchEvent(new Event('input', {bubbles: true}));")
        time.sleep(2)
        if not panel_open(b):
            return
    raise ShotError("level I/II events kept opening their panel over the track")


def replay(b: Browser) -> None:
    """The wall replayed a while back (as far as ten minutes), the replay bar open."""
    wall(b)
    b.click(".cc-rpl-opener")
    span = b.wait(lambda: b.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/api/replay/span').then(r => r.json()).then(s => done(s.from ? s : null),"
        " () => done(null));"), "the replay's span")
    at = max(span["from"], span["to"] - 10 * 60_000)
    b.js("var i = document.querySelector('.cc-rpl-input');"
         "i.value = ccwall.replay.time.toLocal(arguments[0]);", at)
    b.click(".cc-rpl-go")
    b.wait(lambda: b.js("var p = ccwall.replay.probe(); return p.replaying && p.at !== null"),
           "the replayed picture")
    time.sleep(3)


def cockpit(b: Browser) -> None:
    b.open("/cockpit")
    b.wait(lambda: b.js("return document.querySelectorAll('.js-plotly-plot .main-svg').length"
                        " >= 2"), "the cockpit's charts")
    time.sleep(4)  # every chart and the map


def duty(b: Browser) -> None:
    b.open("/duty")
    b.live()
    # the banner asking for a click to allow sound: a person clicks it first
    b.wait(lambda: b.js(f"return document.getElementById('{ids.DUTY_SOUND}') !== null"),
           "the duty desk")
    if b.js(f"var e = document.getElementById('{ids.DUTY_SOUND}');"
            "return e.offsetParent !== null"):
        b.click(f"#{ids.DUTY_SOUND}")
    b.wait(lambda: b.js("return document.querySelectorAll('.cc-duty-row').length > 0"),
           "alarms on the desk")
    time.sleep(3)


def handover(b: Browser) -> None:
    """The duty officer's report for this shift, drafted if it is not yet."""
    b.open("/duty/handover")
    root = f"document.getElementById('{ids.HANDOVER_ROOT}')"
    b.wait(lambda: b.js("return document.querySelector('.cc-ho-draft, .cc-ho-c-title,"
                        " [data-report]') !== null"), "the handover page")
    if b.js("return document.querySelector('.cc-ho-draft') !== null"):
        b.click(".cc-ho-draft")
        b.wait(lambda: b.js(f"var r = {root}; return r && r.dataset.state === 'draft'"),
               "the drafted report")
    time.sleep(3)


def videowall(b: Browser) -> None:
    b.open("/video")
    b.live()
    b.wait(lambda: b.js("return document.querySelectorAll("
                        "'.cc-vplayer[data-state=\"playing\"]').length >= 4"),
           "four tiles playing")
    time.sleep(3)


def rotate(b: Browser) -> None:
    b.open("/rotate?p=wall:60,cockpit:60,video:60")
    b.wait(lambda: b.js("var s = ccwall.rotate && ccwall.rotate.state();"
                        "return s && (s.state === 'running' || s.state === 'held') &&"
                        " !s.loading && s.frames > 0"), "the rotation's first page")
    time.sleep(8)  # the wall in its frame, alive


# Every picture the README shows, in the README's order (tests/tools/test_screenshots.py).
SHOTS: Final = (
    Shot("wall", "commander", wall),
    Shot("videowall", "commander", videowall),
    Shot("sign-in", None, sign_in_page),
    Shot("video-panel", "commander", video_panel),
    Shot("cockpit", "leader", cockpit),
    Shot("duty", "duty_officer", duty),
    Shot("handover", "duty_officer", handover),
    Shot("tracks", "commander", tracks),
    Shot("replay", "commander", replay),
    Shot("rotate", "commander", rotate),
    Shot("wall-en", "commander", wall_en),
    Shot("command-panel", "commander", command_panel),
)


def optimise(path: Path) -> None:
    """Smaller without a visible change: Pillow's lossless PNG optimiser, when Pillow is
    there. (Cutting to 256 colours would take two thirds off, but it bands the panels'
    gradients and greys out the few purple resource dots.)"""
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    rgb.save(path, optimize=True)


def take(shots: list[Shot], demo: Demo, out: Path, alive_s: float) -> list[str]:
    """Every picture of `shots` into `out`; returns the failures' messages."""
    password = demo.password()
    failures: list[str] = []
    b = Browser(demo.url)
    try:
        order = sorted(shots, key=lambda s: (s.role is not None, s.role or ""))
        alive_from = time.monotonic()
        for shot in order:
            started = time.monotonic()
            try:
                if shot.role is None:
                    b.driver.delete_all_cookies()
                    b.user = ""
                else:
                    b.sign_in(shot.role, password)
                if shot.role is not None and time.monotonic() - alive_from < alive_s:
                    b.open("/")  # the wall runs a while first, as a newcomer's does
                    time.sleep(max(0.0, alive_s - (time.monotonic() - alive_from)))
                b.driver.get_log("browser")  # only what this page logs from here on counts
                shot.take(b)
                path = out / f"{shot.name}.png"
                notes = b.save(path)
                optimise(path)
                print(f"  {shot.name}.png ({time.monotonic() - started:.0f} s, "
                      f"{path.stat().st_size // 1024} KB)", flush=True)
                for note in notes:
                    print(f"    note: {note}", flush=True)
            except Exception as exc:  # one page's failure: the rest are still taken
                failures.append(f"{shot.name}: {exc}".splitlines()[0])
                print(f"  {shot.name}: FAILED: {failures[-1]}", flush=True)
    finally:
        b.quit()
    return failures


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.screenshots",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=None,
                        help="CC_DEMO_HISTORY_DAYS for a quick try (default: the app's)")
    parser.add_argument("--alive", type=float, default=25,
                        help="seconds the wall runs before the first picture")
    parser.add_argument("--only", nargs="*", choices=[s.name for s in SHOTS],
                        help="take only these")
    parser.add_argument("--out", type=Path, default=DOCS, help="where the PNGs go")
    args = parser.parse_args(argv)
    shots = [s for s in SHOTS if not args.only or s.name in args.only]
    args.out.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _interrupted)  # stopped from outside: still clean up
    demo = Demo(args.days)
    failures: list[str] = []
    t0 = time.monotonic()
    try:
        print("starting the demo (a fresh data folder: its history first)…", flush=True)
        url = demo.start()
        print(f"the demo is on {url} after {time.monotonic() - t0:.0f} s", flush=True)
        failures = take(shots, demo, args.out, args.alive)
    except DemoError as exc:
        failures.append(str(exc))
    except KeyboardInterrupt:
        failures.append("interrupted")
    finally:
        left = demo.stop()
        if left:
            failures.append(f"still running after the demo stopped (killed): {', '.join(left)}")
    if failures:
        print("screenshots: FAILED\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print(f"screenshots: {len(shots)} pictures in {args.out} "
          f"({time.monotonic() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
