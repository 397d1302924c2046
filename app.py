"""The command wall: builds the Dash app, and `main()` starts the whole stack.

    python app.py [--host H] [--port P] [--ws-port W] [--no-demo]
    python app.py adduser NAME --role ROLE [--scope CODE]   (password on stdin)
    python app.py repair-clock [--dry-run]   (records a bad clock stamped in the future)

With no REDIS_URL an embedded Valkey is started with its data in CC_DATA_DIR, requiring a
password made on first start (CC_DATA_DIR/secrets/redis-password, 0600; every child gets it in
its REDIS_URL, no log shows it); an external REDIS_URL is used as given. Ingest (two:
active and standby), relay, the watch service and the simulator run as child processes (as
they would in production), restarted with backoff if one dies; Ctrl-C or SIGTERM stops them all, the
embedded server last. In demo mode the demo video server (feeds/sim/video.py) runs too.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dash
import redis
from flask import Flask

import callbacks.wall
import layouts.pages
from callbacks.access.auth import install_auth
from callbacks.access.security import install_security
from callbacks.api import create_api, install_error_handlers
from callbacks.archive.stats import create_stats_api, make_cache
from callbacks.archive.tracks import create_tracks_api
from callbacks.cockpit import install_cockpit_guard
from callbacks.command.alerts import create_alerts_api
from callbacks.command.loop import create_command_api
from callbacks.duty.desk import create_duty_api
from callbacks.duty.handover import create_handover_api
from callbacks.vendor import create_vendor
from callbacks.video.api import create_video_api
from dashboard.access.audit import Audit
from dashboard.access.auth import ROLES, Auth, AuthError
from dashboard.access.keyfile import DEMO_PASSWORD, REDIS_PASSWORD, secret, write_private
from dashboard.backoff import Backoff
from dashboard.city import load_city
from dashboard.command.alerts import Alerts
from dashboard.command.dispatch import Desk
from dashboard.command.plans import PlanLibrary
from dashboard.command.sla import Deadlines
from dashboard.config import ROOT, Settings
from dashboard.duty.desk import Duty
from dashboard.i18n import t
from dashboard.ops.capacity import maxmemory_bytes
from dashboard.ops.health import missing, ready
from dashboard.store import Store
from feeds.redis_server import EmbeddedRedis, redact

log = logging.getLogger("cc.app")


def create_app(settings: Settings, redis_url: str | None = None) -> dash.Dash:
    """The Dash app with its pages (the wall, the video wall) and the JSON API; no background
    work is started."""
    url = redis_url or settings.redis_url
    if not url:
        raise ValueError("create_app needs a Redis URL")
    city = load_city(settings.city)
    client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
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
    app.server.json.ensure_ascii = False  # Chinese text as text in the JSON API
    # first of the request hooks: a forged form post or an oversized body costs no session
    install_security(app, settings)
    audit = Audit.of(client, settings)
    install_auth(app.server, Auth(client, settings.prefix, settings), audit, settings)
    install_cockpit_guard(app.server)  # /cockpit: 403 page for other roles and scopes
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
    app.server.register_blueprint(create_api(store, city, plans, desk,
                                             settings.memory_warn_ratio))
    app.server.register_blueprint(create_vendor())  # hls.js from npm, never a CDN
    install_error_handlers(app.server)
    return app


def create_server() -> Flask:
    """WSGI factory for production: `gunicorn 'app:create_server()'` (REDIS_URL required).
    Production serves no demo account: any the demo left in this Redis is disabled."""
    settings = Settings.from_env()
    app = create_app(settings)
    retire_demo_users(settings, redis.Redis.from_url(settings.redis_url or "",
                                                     decode_responses=True))
    return app.server


# -- the embedded stack ---------------------------------------------------------------


class Child:
    """One child process, restarted with backoff when it dies unasked."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.backoff = Backoff(0.5, 30.0)
        self.started = 0.0
        # The supervisor may restart us while main stops us: one at a time, and a stopped
        # child stays stopped (a restart after the stop would outlive the app).
        self.lock = threading.Lock()
        self.stopped = False

    def start(self) -> None:
        with self.lock:
            if self.stopped:
                return
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=ROOT)
            self.started = time.monotonic()

    def watch(self, stop: threading.Event) -> None:
        if self.proc is None or self.proc.poll() is None:
            if time.monotonic() - self.started > 60:
                self.backoff.reset()
            return
        wait = self.backoff.next()
        log.warning("%s exited with %s; restarting in %.1fs", self.name, self.proc.returncode,
                    wait)
        if not stop.wait(wait):
            self.start()

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            if self.proc and self.proc.poll() is None:
                self.proc.terminate()

    def join(self, timeout: float) -> None:
        if not self.proc:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(2)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="app.py", description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="address the wall listens on (CC_HOST)")
    parser.add_argument("--port", type=int, help="HTTP port (CC_PORT, default 8050)")
    parser.add_argument("--ws-port", type=int, help="websocket relay port (CC_WS_PORT)")
    parser.add_argument("--no-demo", action="store_true", help="start no simulator")
    return parser.parse_args(argv)


# -- users: `app.py adduser` and the demo's sign-ins ------------------------------------

DEMO_USERS = (("zhihui", "commander"), ("zhiban", "duty_officer"), ("lingdao", "leader"),
              ("zhiban2", "duty_officer"))  # zhiban2: a second officer to accept a handover
DEMO_DISPLAY = "wall"
URL_FILE = "url"  # in the embedded server's data folder while the app runs


def _read_password(prompt: str) -> str:
    """The password from stdin: without echo on a terminal, else the first line."""
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(prompt, stream=sys.stderr)
    return sys.stdin.readline().rstrip("\r\n")


def embedded_server(settings: Settings, maxmemory: str = "") -> EmbeddedRedis:
    """The embedded Valkey of the data folder (not started), with its password."""
    return EmbeddedRedis(Path(settings.data_dir) / "redis", persist=True, maxmemory=maxmemory,
                         password=secret(settings.data_dir, REDIS_PASSWORD))


def _open_redis(settings: Settings) -> tuple[redis.Redis, EmbeddedRedis | None]:
    """REDIS_URL, else the running app's embedded server, else the embedded data started
    for the moment (and stopped by the caller)."""
    if settings.redis_url:
        return redis.Redis.from_url(settings.redis_url, decode_responses=True), None
    folder = Path(settings.data_dir) / "redis"
    url_file = folder / URL_FILE
    if url_file.exists():
        client = redis.Redis.from_url(url_file.read_text().strip(), decode_responses=True,
                                      socket_connect_timeout=1)
        try:
            client.ping()
            return client, None
        except redis.RedisError:
            client.close()  # a stale file: the app is not running
    embedded = embedded_server(settings).start()
    return redis.Redis.from_url(embedded.url, decode_responses=True), embedded


def adduser(argv: list[str]) -> int:
    """`app.py adduser NAME --role ROLE [--scope CODE]`: create or update a user.

    The password is read from stdin. For role `display` no password is needed: a fresh
    kiosk token is printed instead (a password given on stdin is set as well)."""
    parser = argparse.ArgumentParser(prog="app.py adduser",
                                     description="create or update a user; password on stdin")
    parser.add_argument("name")
    parser.add_argument("--role", required=True, choices=ROLES)
    parser.add_argument("--scope", default=None,
                        help="limit the user to a town, community or grid code")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    client, embedded = _open_redis(settings)
    try:
        auth = Auth(client, settings.prefix, settings)
        if args.role == "display":
            auth.validate(args.name, args.role, args.scope or None)
            password = "" if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
            if password:
                auth.add_user(args.name, "display", password, args.scope)
            token = auth.add_display(args.name, args.scope)
            print(f"display user {args.name}: kiosk URL "
                  f"http://{settings.host}:{settings.port}/?display={token}")
            print(f"token (shown once): {token}")
        else:
            password = _read_password(f"password for {args.name}: ")
            auth.add_user(args.name, args.role, password, args.scope)
            print(f"user {args.name} saved with role {args.role}"
                  + (f", scope {args.scope}" if args.scope else ""))
        Audit.of(client, settings).write(
            user="-", role="-", action="adduser", target=args.name, ip="cli", outcome="success",
            detail={"role": args.role, "scope": args.scope})
        return 0
    except AuthError as exc:
        print(f"adduser: {exc}", file=sys.stderr)
        return 2
    finally:
        client.close()
        if embedded is not None:
            embedded.stop()


def repair_clock(argv: list[str]) -> int:
    """`app.py repair-clock [--dry-run]`: bring back stored ts values far in the future."""
    from dashboard.ops.clock_repair import repair_future

    parser = argparse.ArgumentParser(
        prog="app.py repair-clock",
        description="set every stored ts more than CC_MAX_FUTURE_S ahead of now to the time "
                    "ingest received it, so true updates are no longer refused as stale")
    parser.add_argument("--dry-run", action="store_true", help="list them, change nothing")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    client, embedded = _open_redis(settings)
    try:
        now = int(time.time() * 1000)
        found = repair_future(Store(client, settings.prefix), now, settings.max_future_s * 1000,
                              dry_run=args.dry_run)
        for frozen in found:
            ahead = (frozen.ts - now) / 86_400_000
            print(f"{frozen.kind} {frozen.id}: ts {frozen.ts} ({ahead:.1f} days ahead) -> "
                  f"{frozen.repaired_ts}")
        verb = "would be repaired" if args.dry_run else "repaired"
        print(f"{len(found)} record(s) {verb}")
        if found and not args.dry_run:
            Audit.of(client, settings).write(
                user="-", role="-", action="repair_clock", target=f"{len(found)} records",
                ip="cli", outcome="success",
                detail={"ids": [f"{f.kind}:{f.id}" for f in found[:100]]})
        return 0
    finally:
        client.close()
        if embedded is not None:
            embedded.stop()


def demo_password(settings: Settings) -> str:
    """The demo users' password: made once per data folder (it meets the password rule), so
    no one knows it from the README; printed with the demo's banner."""
    return secret(settings.data_dir, DEMO_PASSWORD,
                  lambda: f"Demo-{secrets.token_hex(4)}")


def demo_sign_ins(settings: Settings, client: redis.Redis) -> None:
    """The demo's users (marked `demo`, so a run without the demo disables them) and a kiosk
    URL for the wall, printed loudly. A real user with a demo user's name is left alone."""
    auth = Auth(client, settings.prefix, settings)
    auth.enable_demo_users()  # disabled when the demo last stopped
    password = demo_password(settings)
    skipped = []
    for name, role in DEMO_USERS:
        found = auth.user(name)
        if found is not None and found.get("demo") != "1":
            skipped.append(name)
            continue
        if found is None or found.get("disabled") or found.get("role") != role or \
                not auth.check_password(name, password):
            auth.add_user(name, role, password, demo=True)
    # The kiosk token is kept in the data folder so the wall's URL survives a restart.
    token_file = Path(settings.data_dir) / "demo-kiosk-token"
    token = ""
    wall = auth.user(DEMO_DISPLAY)
    if wall is not None and wall.get("demo") != "1":
        skipped.append(DEMO_DISPLAY)
    else:
        token = token_file.read_text().strip() if token_file.exists() else ""
        if not token or auth.display_user(token) != DEMO_DISPLAY:
            token = auth.add_display(DEMO_DISPLAY, demo=True)
            write_private(token_file, token)
    bar = "=" * 72
    print(f"{bar}\nWARNING: demo credentials; never use them in production (CC_DEMO_USERS=0 "
          f"or --no-demo turns them off and disables them):", flush=True)
    for name, role in DEMO_USERS:
        if name not in skipped:
            print(f"  {name:<8} / {password}  {role}")
    if token:
        print(f"  kiosk (read-only wall): http://{settings.host}:{settings.port}/?display={token}")
    if skipped:
        print(f"  not made (a real user has the name): {', '.join(skipped)}")
    print(bar, flush=True)


def retire_demo_users(settings: Settings, client: redis.Redis) -> list[str]:
    """Without the demo, its users cannot sign in: disabled (password and kiosk token
    refused), their sessions ended. Returns the names disabled now."""
    gone = Auth(client, settings.prefix, settings).disable_demo_users()
    if gone:
        log.info("demo users disabled (they exist only while the demo runs): %s", ", ".join(gone))
        Audit.of(client, settings).write(
            user="-", role="-", action="demo.disable", target=",".join(gone), ip="cli",
            outcome="success", detail={"users": gone})
    return gone


def _wait_ready(store: Store, stop: threading.Event, warn_after_s: float = 30.0) -> bool:
    """Until ingest is subscribed and the relay listens; False if stopped first."""
    started = time.monotonic()
    warned = False
    while not stop.is_set():
        now = int(time.time() * 1000)
        try:
            state = store.health()
        except (redis.RedisError, OSError):
            state = {"ingest": {}, "relay": {}}
        if ready(state, now):
            return True
        if not warned and time.monotonic() - started > warn_after_s:
            warned = True
            log.warning("still waiting for %s to start (see its log above)",
                        " and ".join(missing(state, now)))
        stop.wait(0.2)
    return False


def main(argv: list[str] | None = None) -> None:
    from werkzeug.serving import make_server

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["adduser"]:
        sys.exit(adduser(argv[1:]))
    if argv[:1] == ["repair-clock"]:
        sys.exit(repair_clock(argv[1:]))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
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
        embedded = embedded_server(settings, str(maxmemory) if maxmemory else "").start()
        url = embedded.url
        log.info("embedded Valkey on %s (password required), data in %s, maxmemory %s",
                 embedded.safe_url, embedded.data_dir,
                 f"{maxmemory / 2**30:.1f} GiB" if maxmemory else "none")
        # so `app.py adduser` reaches this server instead of starting a second one; the URL
        # carries the password, so the file is owner-only
        write_private(embedded.data_dir / URL_FILE, url)
    else:
        log.info("Redis at %s", redact(url))
    settings = dataclasses.replace(settings, redis_url=url)

    env = {**os.environ, "REDIS_URL": url, "CC_PREFIX": settings.prefix,
           "CC_WS_PORT": str(settings.ws_port), "CC_PORT": str(settings.port),
           "CC_HOST": settings.host}
    py = sys.executable
    # Two ingest processes: one applies, the other stands by with the feed's last seconds
    # and takes over when the first dies (feeds/failover.py); pub/sub keeps nothing for later.
    children = [Child("ingest-a", [py, "-m", "feeds.ingest"], env),
                Child("ingest-b", [py, "-m", "feeds.ingest"], env),
                Child("relay", [py, "-m", "feeds.relay"], env),
                Child("watch", [py, "-m", "feeds.watch"], env)]
    if not args.no_demo:
        children.append(Child("simulator", [py, "-m", "feeds.simulator"], env))
        children.append(Child("video", [py, "-m", "feeds.sim.video"], env))

    stop = threading.Event()
    app = create_app(settings)
    http = make_server(settings.host, settings.port, app.server, threaded=True)

    def shutdown(signum: int, _frame: object) -> None:
        if not stop.is_set():
            log.info("stopping (signal %s)", signum)
            stop.set()
            threading.Thread(target=http.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    # The last run's heartbeats live on for 15 s (and the AOF brings them back): a quick
    # restart would look ready before this run's ingest has subscribed.
    ready_store = Store(redis.Redis.from_url(url, decode_responses=True, socket_timeout=5),
                        settings.prefix)
    ready_store.r.delete(*(ready_store.key(k) for k in ("ingest:hb", "ingest:standby", "relay:hb")))
    # Sessions from before tokens were hashed can no longer be used: none kept in Redis.
    Auth(ready_store.r, settings.prefix, settings).drop_plain_sessions()
    if args.no_demo or not settings.demo_users:
        retire_demo_users(settings, ready_store.r)
    for child in children:
        child.start()

    def supervise() -> None:
        while not stop.wait(1.0):
            for child in children:
                child.watch(stop)

    threading.Thread(target=supervise, daemon=True, name="supervisor").start()
    # Serve at once (health answers "starting"), but print the URL only once a message
    # published would be stored and shown: ingest subscribed, the relay listening.
    server = threading.Thread(target=http.serve_forever, name="http")
    server.start()
    demo = not args.no_demo and settings.demo_users
    try:
        if _wait_ready(ready_store, stop):
            if demo:
                demo_sign_ins(settings, ready_store.r)
            log.info("the wall is on http://%s:%s (websocket relay on port %s)",
                     settings.host, settings.port, settings.ws_port)
            if not args.no_demo:
                first, spread = settings.sim_video_port, max(1, settings.sim_video_spread)
                log.info("demo video on http://%s:%d-%d/video/<camera id>.mjpg",
                         settings.host, first, first + spread - 1)
        while server.is_alive():
            server.join(0.5)
    finally:
        stop.set()
        if demo:
            try:  # the demo's users exist only while it runs
                retire_demo_users(settings, ready_store.r)
            except redis.RedisError as exc:
                log.warning("could not disable the demo users: %s", exc)
        for child in children:
            child.stop()
        for child in children:
            child.join(5)
        if embedded is not None:
            (embedded.data_dir / URL_FILE).unlink(missing_ok=True)
            embedded.stop()
        log.info("stopped")


if __name__ == "__main__":
    main()
