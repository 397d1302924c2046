"""Demo simulator: a living Pingdu published on the real feed protocol (docs/PROTOCOL.md).

    python -m feeds.simulator [--redis-url URL] [--rate X] [--seed N] [--duration S]

At rate 1 it is Pingdu on an ordinary day: 2,140 grid workers walking their grids
(a fix every ~5 s), ~350 emergency vehicles, teams, depots and shelters, 3,000 cameras,
and an event reported every ~4 s. The command center owns what follows: the simulator
plays the field, answering every `cc:dispatch` for its units on `cc:feedback` while the
units really travel and work (feeds/sim/field.py). `rate` fast-forwards all of it.
`app.py` runs it as a child process; `run_simulator` is the in-process form.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from dashboard.city import load_city
from dashboard.config import Settings
from dashboard.ops import logs
from feeds.redis_server import redact
from feeds.sim import autopilot
from feeds.sim.engine import WARMUP_S, Simulator, video_bases
from feeds.sim.world import CityLike

log = logging.getLogger("feeds.simulator")


def _load_city(city: str | CityLike | None) -> CityLike:
    if city is not None and not isinstance(city, str):
        return city
    return load_city(city or Settings.from_env().city)


def run_simulator(redis_url: str, prefix: str, rate: float = 1.0, seed: int = 7,
                  stop: threading.Event | None = None, duration: float | None = None, *,
                  city: str | CityLike | None = None,
                  video_base: str | Sequence[str] | None = None,
                  warmup: float = WARMUP_S, settings: Settings | None = None) -> None:
    """Publish until `stop` is set (checked every tick, 0.1 s) or `duration` seconds pass.

    Survives Redis going away: it backs off (capped exponential) and carries on. `city`
    is a city name or an already loaded city; the default is the configured one. The
    first tick publishes `warmup` simulated seconds of event history (0: start empty).
    With `settings.sim_autopilot_s` > 0 the demo's autopilot runs beside it. `video_base`
    (one URL prefix or several) defaults to the demo video server's ports in `settings`.
    """
    stop = stop or threading.Event()
    settings = replace(settings or Settings.from_env(), prefix=prefix)
    sim = build(city, prefix=prefix, rate=rate, seed=seed, video_base=video_base, stop=stop,
                settings=settings)
    if sim is not None:
        run_with_autopilot(sim, redis_url, settings, stop, duration, warmup)


def run_with_autopilot(sim: Simulator, redis_url: str, settings: Settings,
                       stop: threading.Event, duration: float | None, warmup: float) -> None:
    """`sim.run`, with the autopilot (when the settings ask for it) stopped alongside."""
    pilot_stop = threading.Event()
    pilot = autopilot.start(redis_url, settings, pilot_stop, on_spot=sim.desk.on_spot,
                            lock=sim.publishing, engaged=sim.hint_engaged)
    try:
        sim.run(redis_url, stop, duration, warmup)
    finally:
        pilot_stop.set()
        if pilot is not None:
            pilot.join(5)


def build(city: str | CityLike | None, *, stop: threading.Event | None = None,
          **kwargs: Any) -> Simulator | None:
    """A ready `Simulator`, or None when `stop` was set while it was being built."""
    loaded = _load_city(city)
    if stop is not None and stop.is_set():
        return None
    sim = Simulator(loaded, **kwargs)
    return None if stop is not None and stop.is_set() else sim


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_env()
    ap = argparse.ArgumentParser(prog="python -m feeds.simulator",
                                 description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--redis-url", default=settings.redis_url or "redis://127.0.0.1:6379/0",
                    help="default: $REDIS_URL or redis://127.0.0.1:6379/0")
    ap.add_argument("--rate", type=float, default=settings.sim_rate,
                    help="speed-up of the whole city (default: $CC_SIM_RATE or 1)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    ap.add_argument("--prefix", default=settings.prefix, help="channel prefix (default: cc:)")
    ap.add_argument("--city", default=settings.city)
    ap.add_argument("--video-base", default=None,
                    help="URL prefix of the cameras' streams (default: $CC_SIM_VIDEO_BASE, "
                    "else the demo video server: $CC_SIM_VIDEO_PORT and the ports after it)")
    ap.add_argument("--warmup", type=float, default=WARMUP_S,
                    help=f"simulated seconds of event history published first "
                    f"(default {WARMUP_S:g})")
    args = ap.parse_args(argv)
    if not args.rate > 0:
        ap.error("--rate must be positive")
    logs.configure(settings.log_format, "simulator")

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    started = time.monotonic()
    settings = replace(settings, prefix=args.prefix)
    bases = [args.video_base] if args.video_base else video_bases(settings)
    sim = build(args.city, prefix=args.prefix, rate=args.rate, seed=args.seed,
                video_base=bases, stop=stop, settings=settings)
    if sim is None:
        return 0
    log.info("simulator: %d workers, %d resources, %d cameras ready in %.1fs; rate %g → %s",
             len(sim.world.workers), len(sim.world.resources), len(sim.world.cameras),
             time.monotonic() - started, args.rate, redact(args.redis_url))
    t0 = time.monotonic()
    run_with_autopilot(sim, args.redis_url, settings, stop, args.duration, args.warmup)
    elapsed = max(1e-9, time.monotonic() - t0)
    live = sim.sent.copy()
    live["event"] -= sim.warm_sent
    per = ", ".join(f"{k} {n / elapsed:.1f}/s" for k, n in sorted(live.items()))
    log.info("simulator: %d live messages in %.1fs (%.1f/s: %s) after %d of history; "
             "%d of our events not yet handled", live.total(), elapsed, live.total() / elapsed, per,
             sim.warm_sent, sim.open_events())
    return 0


if __name__ == "__main__":
    sys.exit(main())
