"""The command wall: composes the Dash app from its parts, and `main()` starts the whole stack.

    python app.py [--host H] [--port P] [--ws-port W] [--no-demo]
    python app.py adduser NAME --role ROLE [--scope CODE]   (password on stdin)
    python app.py repair-clock [--dry-run]   (records a bad clock stamped in the future)

With no REDIS_URL an embedded Valkey is started with its data in CC_DATA_DIR, requiring a
password made on first start (CC_DATA_DIR/secrets/redis-password, 0600; every child gets it in
its REDIS_URL, no log shows it); an external REDIS_URL is used as given. The HTTP side
(gunicorn, deploy/gunicorn.conf.py), ingest (two: active and standby), relay, the watch
service and the simulator run as child processes (as they would in production) under
feeds/supervisor.py, restarted with backoff if one dies;
Ctrl-C or SIGTERM stops them all, the embedded server last. In demo mode the demo video server
(feeds/sim/video.py) runs too, and the demo's users (dashboard/access/demo.py) can sign in.
The operator's commands live in feeds/admin.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import threading

import dash
import redis
from flask import Flask

import callbacks.cockpit
import callbacks.wall
import layouts.pages
from callbacks.access.auth import install_auth
from callbacks.access.security import install_security
from callbacks.api import create_api, install_error_handlers
from callbacks.archive.replay import create_replay_api
from callbacks.archive.stats import create_stats_api, make_cache
from callbacks.archive.tracks import create_tracks_api
from callbacks.cockpit import install_cockpit_guard
from callbacks.command.alerts import create_alerts_api
from callbacks.command.loop import create_command_api
from callbacks.duty.desk import create_duty_api
from callbacks.duty.handover import create_handover_api
from callbacks.metrics import install_metrics
from callbacks.rotation import create_rotation_api, install_rotation_gate
from callbacks.vendor import create_vendor
from callbacks.video.api import create_video_api
from dashboard.access.audit import Audit
from dashboard.access.auth import Auth
from dashboard.access.demo import demo_sign_ins, retire_demo_users
from dashboard.access.keyfile import write_private
from dashboard.city import load_city
from dashboard.command.alerts import Alerts
from dashboard.command.dispatch import Desk
from dashboard.command.plans import PlanLibrary
from dashboard.command.sla import Deadlines
from dashboard.config import ROOT, Settings
from dashboard.connect import check_prefix, open_redis
from dashboard.duty.desk import Duty
from dashboard.i18n import t
from dashboard.ops import logs
from dashboard.ops.capacity import maxmemory_bytes
from dashboard.rotation.saved import Rotations
from dashboard.store import Store
from feeds import admin
from feeds.redis_server import EmbeddedRedis, redact
from feeds.supervisor import Supervisor, forget_heartbeats, wait_http, wait_ready

log = logging.getLogger("cc.app")


def create_app(settings: Settings, redis_url: str | None = None) -> dash.Dash:
    """The Dash app with its pages (the wall, the video wall) and the JSON API; no background
    work is started."""
    url = redis_url or settings.redis_url
    if not url:
        raise ValueError("create_app needs a Redis URL")
    city = load_city(settings.city)
    client = open_redis(url, decode_responses=True, socket_timeout=5)
    store = Store(client, settings.prefix)
    app = dash.Dash(
        __name__,
        assets_folder=str(ROOT / "assets"),
        title=t("app.title", settings.lang),
        update_title=None,
        suppress_callback_exceptions=True,
        serve_locally=True,  # closed networks: never a CDN
    )
    layouts.pages.configure(settings)
    app.layout = layouts.pages.layout()  # the address; the router renders its page
    layouts.pages.register(app)  # by path: / the wall, /video …
    callbacks.wall.register(app)
    callbacks.cockpit.register(app, city)  # the cockpit's charts from its figures JSON
    app.server.json.ensure_ascii = False  # Chinese text as text in the JSON API
    # first of the request hooks: a forged form post or an oversized body costs no session
    install_security(app, settings)
    install_metrics(app.server, store, settings)  # /metrics; times every request
    audit = Audit.of(client, settings)
    install_auth(app.server, Auth(client, settings.prefix, settings), audit, settings)
    install_cockpit_guard(app.server)  # /cockpit: 403 page for other roles and scopes
    rotations = Rotations(store)
    install_rotation_gate(app.server, rotations, city)  # /rotate: 400/403/404 pages
    plans = PlanLibrary.load()
    desk = Desk(store, plans, Deadlines.load(), settings)
    app.server.register_blueprint(create_command_api(store, desk, plans, audit, city))
    app.server.register_blueprint(create_alerts_api(Alerts(store), audit))
    app.server.register_blueprint(create_stats_api(store, city, settings,
                                                   make_cache(app.server, url, settings)))
    app.server.register_blueprint(create_video_api(store))
    app.server.register_blueprint(create_handover_api(store, settings))
    app.server.register_blueprint(create_duty_api(Duty(store), city))
    app.server.register_blueprint(create_tracks_api(store, settings))
    app.server.register_blueprint(create_replay_api(store, settings))
    app.server.register_blueprint(create_rotation_api(rotations, city))
    app.server.register_blueprint(create_api(store, city, plans, desk,
                                             settings.memory_warn_ratio))
    app.server.register_blueprint(create_vendor())  # hls.js from npm, never a CDN
    install_error_handlers(app.server)
    return app


def create_server(demo: bool = False) -> Flask:
    """WSGI factory: `gunicorn -c deploy/gunicorn.conf.py 'app:create_server()'` (REDIS_URL
    required). Production serves no demo account: any the demo left in this Redis is
    disabled. `make run`'s demo starts `create_server(demo=True)`, whose users `main` makes
    and retires."""
    settings = Settings.from_env()
    logs.configure(settings.log_format, "app")  # gunicorn configures only its own loggers
    app = create_app(settings)
    if not demo:
        retire_demo_users(settings, open_redis(settings.redis_url or "",
                                               decode_responses=True))
    return app.server


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="app.py", description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="address the wall listens on (CC_HOST)")
    parser.add_argument("--port", type=int, help="HTTP port (CC_PORT, default 8050)")
    parser.add_argument("--ws-port", type=int, help="websocket relay port (CC_WS_PORT)")
    parser.add_argument("--no-demo", action="store_true", help="start no simulator")
    return parser.parse_args(argv)


def _seed_history(settings: Settings, url: str, stop: threading.Event) -> None:
    """The demo's past (docs/DEMO.md): once per data folder, before the simulator starts
    (it writes as the history's units) and before the URL is printed."""
    if settings.demo_history_days <= 0:
        return
    from feeds.sim.history import seed_history  # the web workers import app.py: keep it light
    log.info("demo history: writing %d days (once per data folder; CC_DEMO_HISTORY_DAYS)",
             settings.demo_history_days)
    try:
        seed_history(settings, url, load_city(settings.city), settings.demo_history_days,
                     stop=stop)
    except (redis.RedisError, OSError, ValueError) as exc:  # the wall still starts
        log.warning("demo history failed: %r", exc)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["adduser"]:
        sys.exit(admin.adduser(argv[1:]))
    if argv[:1] == ["repair-clock"]:
        sys.exit(admin.repair_clock(argv[1:]))
    logs.configure(Settings.from_env().log_format, "app")
    args = _parse(argv)
    settings = Settings.from_env()
    settings = dataclasses.replace(
        settings,
        host=args.host or settings.host,
        port=args.port or settings.port,
        ws_port=args.ws_port or settings.ws_port,
    )
    embedded: EmbeddedRedis | None = None
    url = settings.redis_url
    if not url:
        maxmemory = maxmemory_bytes(settings, len(load_city(settings.city).grids))
        embedded = admin.embedded_server(settings, str(maxmemory) if maxmemory else "").start()
        url = embedded.url
        log.info("embedded Valkey on %s (password required), data in %s, maxmemory %s",
                 embedded.safe_url, embedded.data_dir,
                 f"{maxmemory / 2**30:.1f} GiB" if maxmemory else "none")
        # so `app.py adduser` reaches this server instead of starting a second one; the URL
        # carries the password, so the file is owner-only
        write_private(embedded.data_dir / admin.URL_FILE, url)
    else:
        log.info("Redis at %s", redact(url))
        try:
            check_prefix(url, settings.prefix)  # before any process starts on a cluster
        except ValueError as exc:
            sys.exit(f"app.py: {exc}")
    settings = dataclasses.replace(settings, redis_url=url)

    # HTTP too is a child (gunicorn, deploy/gunicorn.conf.py): the same command systemd and
    # the container run, restarted with backoff like the others.
    supervisor = Supervisor(settings, url, demo=not args.no_demo)

    stop = threading.Event()

    def shutdown(signum: int, _frame: object) -> None:
        if not stop.is_set():
            log.info("stopping (signal %s)", signum)
            stop.set()

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    ready_store = Store(open_redis(url, decode_responses=True, socket_timeout=5),
                        settings.prefix)
    forget_heartbeats(ready_store)
    # Sessions from before tokens were hashed can no longer be used: none kept in Redis.
    Auth(ready_store.r, settings.prefix, settings).drop_plain_sessions()
    if args.no_demo or not settings.demo_users:
        retire_demo_users(settings, ready_store.r)
    if not args.no_demo:
        _seed_history(settings, url, stop)
    supervisor.start(stop)
    # Print the URL only once a message published would be stored and shown (ingest
    # subscribed, the relay listening) and the pages are served.
    demo = not args.no_demo and settings.demo_users
    try:
        if wait_ready(ready_store, stop) and wait_http(settings.host, settings.port, stop):
            if demo:
                demo_sign_ins(settings, ready_store.r)
            log.info("the wall is on http://%s:%s (websocket relay on port %s)",
                     settings.host, settings.port, settings.ws_port)
            if not args.no_demo:
                first, spread = settings.sim_video_port, max(1, settings.sim_video_spread)
                log.info("demo video on http://%s:%d-%d/video/<camera id>.mjpg",
                         settings.host, first, first + spread - 1)
        while not stop.wait(0.5):  # a timeout, so the signal handler gets to run
            pass
    finally:
        stop.set()
        if demo:
            try:  # the demo's users exist only while it runs
                retire_demo_users(settings, ready_store.r)
            except redis.RedisError as exc:
                log.warning("could not disable the demo users: %s", exc)
        supervisor.stop()
        if embedded is not None:
            (embedded.data_dir / admin.URL_FILE).unlink(missing_ok=True)
            embedded.stop()
        log.info("stopped")


if __name__ == "__main__":
    main()
