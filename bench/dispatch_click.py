"""Click to dispatched: a commander's Confirm press on the wall until every unit sent shows
dispatched there (marker and rows restyled from their own frames, painted).

Starts the real stack (`python app.py`: embedded Valkey, ingest, relay, watch, the simulator
at rate 1 with its autopilot off so only we dispatch), signs a commander in (session cookie),
and for each of N fresh events (level IV, so none opens the panel by itself): click its row,
click Dispatch, wait for the proposal, press Confirm. The page times the press
(`ccwall.command.dispatchTimes()`: press → the frame that painted the last unit engaged) and
the HTTP answer to it (`dispatchHttpTimes()`). When no unit is free within the plan's time
limits the bench does what a commander would: picks the nearest candidate and gives a
reason. Baseline in the same run, same page, after each dispatch: the plain
`GET /api/events/<id>` round trip (`fetch`, the panel's own read).

    python -m bench.dispatch_click [--dispatches 60]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import redis

from bench.browser import browser
from bench.latency import exit_on_sigterm, load, percentiles, stack, wait_for
from dashboard.access.auth import Auth
from dashboard.config import Settings

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results"
CITY = json.loads((ROOT / "data" / "pingdu" / "city.json").read_text(encoding="utf-8"))
# Everyday cases whose plans call one to three units (a grid worker, law enforcement, police).
TYPES = ("dispute", "garbage", "theft", "street_vending", "noise")
PASSWORD = "bench-commander-pw"

BASELINE_JS = """
const done = arguments[arguments.length - 1];
const t0 = performance.now();
fetch('/api/events/' + encodeURIComponent(arguments[0]), {credentials: 'same-origin'})
  .then(r => r.json()).then(() => done(performance.now() - t0), () => done(null));
"""


def sign_in(driver: Any, base: str, redis_url: str) -> None:
    """A commander signed in, on the wall."""
    set_session(driver, base, redis_url)
    driver.get(base)


def set_session(driver: Any, base: str, redis_url: str) -> None:
    """A commander's session cookie, as the /login page would set it, on a JSON page: no
    page of ours is opened (its socket would stay)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        auth = Auth(client, "cc:", Settings())
        auth.add_user("bench-commander", "commander", PASSWORD)
        session = auth.login("bench-commander", PASSWORD, "127.0.0.1")
    finally:
        client.close()
    assert session is not None
    driver.get(base + "api/health")  # a page of the origin, so the cookie can be set
    driver.add_cookie({"name": "cc_session", "value": session.token, "path": "/"})


def js(driver: Any, script: str, *args: Any) -> Any:
    return driver.execute_script(script, *args)


def one_dispatch(driver: Any, client: redis.Redis, rng: random.Random, n: int) -> float | None:
    """Publish an event, dispatch it through the panel; the baseline round trip after it."""
    grid = rng.choice(CITY["grids"])
    lon, lat = grid["centroid"]
    eid = f"BENCH-D{n:04d}"
    client.publish("cc:event", json.dumps({
        "id": eid, "type": TYPES[n % len(TYPES)], "severity": 4, "lon": lon, "lat": lat,
        "ts": int(time.time() * 1000), "title": f"派发测试 {n}", "source": "hotline"}))
    row = f'.cc-event-row[data-id="{eid}"]'
    wait_for(lambda: js(driver, f"return !!document.querySelector('{row}')"), 10,
             f"the row of {eid}", every=0.02)
    driver.find_element("css selector", row).click()
    wait_for(lambda: js(driver, "const b = document.getElementById('cc-cmd-dispatch');"
                        "return window.ccwall.command.selected() === arguments[0] && b && "
                        "!b.hidden && !b.disabled && document.querySelectorAll("
                        "'#cc-cmd-plans li').length > 0", eid), 10, "the panel", every=0.02)
    driver.find_element("id", "cc-cmd-dispatch").click()
    wait_for(lambda: js(driver, "return !document.getElementById('cc-cmd-proposal').hidden"),
             10, "the proposal", every=0.02)
    if js(driver, "return !document.querySelector('#cc-cmd-proposal-units input:checked')"):
        # nothing free within the plan's time limits: take the nearest candidate, say why
        driver.find_element("css selector", "#cc-cmd-proposal-units li.cc-cmd-pick").click()
        driver.find_element("id", "cc-cmd-override").send_keys("时限内无空闲力量，派最近的")
    try:
        wait_for(lambda: js(driver, "const b = document.getElementById('cc-cmd-confirm');"
                            "return !document.getElementById('cc-cmd-proposal').hidden && "
                            "!b.disabled"), 10, "the proposal", every=0.02)
    except TimeoutError:
        state = js(driver, "return ['cc-cmd-msg', 'cc-cmd-proposal-hint', "
                   "'cc-cmd-proposal-units'].map(i => document.getElementById(i).textContent)")
        raise TimeoutError(f"no proposal to confirm for {eid}: {state}") from None
    before = js(driver, "return window.ccwall.command.dispatchTimes().length")
    driver.find_element("id", "cc-cmd-confirm").click()
    try:
        wait_for(lambda: js(driver, "return window.ccwall.command.dispatchTimes().length")
                 > before, 10, "the units shown dispatched", every=0.01)
    except TimeoutError:
        state = js(driver, """
            const c = window.ccwall, tid = c.command.taskOf(arguments[0]);
            return {msg: document.getElementById('cc-cmd-msg').textContent, task: tid,
                    units: (tid ? tid.assignees : []).map(a => [a.kind, a.id,
                      (c.store.get(a.kind, String(a.id)) || {}).status])};""", eid)
        raise TimeoutError(f"{eid} not shown dispatched: {state}") from None
    return driver.execute_async_script(BASELINE_JS, eid)


def run(dispatches: int, seed: int = 11) -> dict[str, Any]:
    rng = random.Random(seed)
    os.environ["CC_SIM_AUTOPILOT_S"] = "0"  # the demo's autopilot would dispatch too
    with stack() as (url, redis_url):
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        driver = browser(url + "api/health")
        try:
            sign_in(driver, url, redis_url)
            wait_for(lambda: js(driver, "return window.ccwall && ccwall.connected && "
                                "ccwall.command.role === 'commander' && "
                                "ccwall.state.workers > 2000"), 180,
                     "the wall with the simulator's workers", every=1.0)
            wait_for(lambda: js(driver, "return document.querySelectorAll('.cc-label-town')"
                                ".length >= 17"), 30, "the town names")
            load_before = load()
            baseline: list[float] = []
            for n in range(dispatches + 3):
                rtt = one_dispatch(driver, client, rng, n)
                if n >= 3 and rtt is not None:  # the first few warm the page and the plans
                    baseline.append(rtt)
            load_during = load()
            click = js(driver, "return window.ccwall.command.dispatchTimes()")[3:]
            http = js(driver, "return window.ccwall.command.dispatchHttpTimes()")[3:]
            errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        finally:
            driver.quit()
            client.close()
    c, h, b = percentiles(click), percentiles(http), percentiles(baseline)
    return {
        "dispatches": len(click),
        "click_to_dispatched_ms": c,
        "click_to_http_answer_ms": h,
        "baseline_get_event_ms": b,
        "ratio_to_baseline": {k: round(float(c[k]) / float(b[k]), 2)  # type: ignore[arg-type]
                              for k in ("p50", "p99") if c.get(k) and b.get(k)},
        "target_p99_le_300": bool(c["p99"] is not None and float(c["p99"]) <= 300),
        "console_errors": len(errors),
        "load": {"before": load_before, "during": load_during},
        "raw": {"click": [round(x, 1) for x in click], "http": [round(x, 1) for x in http],
                "baseline": [round(x, 1) for x in baseline]},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def summary(result: dict[str, Any]) -> str:
    c, h, b = (result["click_to_dispatched_ms"], result["click_to_http_answer_ms"],
               result["baseline_get_event_ms"])
    return (f"click to dispatched ({result['dispatches']} dispatches) ms  p50 / p90 / p99 / max\n"
            f"  press -> units shown dispatched {c['p50']} / {c['p90']} / {c['p99']} / "
            f"{c['max']}\n"
            f"  press -> HTTP 201              {h['p50']} / {h['p90']} / {h['p99']} / {h['max']}\n"
            f"  baseline GET /api/events/<id>  {b['p50']} / {b['p90']} / {b['p99']} / {b['max']}\n"
            f"  ratio to baseline {result['ratio_to_baseline']}; target p99 <= 300: "
            f"{result['target_p99_le_300']}; console errors {result['console_errors']}; "
            f"load {result['load']['during']['loadavg']}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.dispatch_click",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--dispatches", type=int, default=60)
    args = parser.parse_args(argv)
    exit_on_sigterm()
    result = run(args.dispatches)
    OUT.mkdir(exist_ok=True)
    (OUT / "dispatch_click.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(summary(result), flush=True)
    return result


if __name__ == "__main__":
    main()
