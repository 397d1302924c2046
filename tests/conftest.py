"""Shared fixtures: a real Valkey server started by the tests themselves."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from dashboard.config import Settings
from dashboard.store import now_ms
from feeds.ingest import Ingest
from feeds.redis_server import EmbeddedRedis, free_port
from feeds.relay import Relay
from feeds.watch import Watch

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One real server for the whole run; each test gets it flushed (see `r`)."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> Iterator[str]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield redis_server.url
    client.flushall()
    client.close()


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests need Debian's chromium + chromedriver; `make test` installs them."""
    if shutil.which("chromedriver") and shutil.which("chromium"):
        return
    if os.environ.get("CI"):
        return  # in CI a missing browser must fail loudly, not skip
    skip = pytest.mark.skip(reason="chromium/chromedriver missing: run `make browser`")
    for item in items:
        if "dash_duo" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


# -- the live stack: real ingest and relay against the test server ----------------------


@dataclass
class Stack:
    """Ingest + relay running in threads on the test Valkey, and the Dash app over them."""

    settings: Settings
    client: redis.Redis
    ingest: Ingest
    relay: Relay
    watch: Watch | None = None
    _app: Any = None
    _headers: dict[str, str] | None = None

    @property
    def app(self) -> Any:
        if self._app is None:
            from app import create_app

            self._app = create_app(self.settings)
        return self._app

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.settings.ws_port}/ws"

    @property
    def headers(self) -> dict[str, str]:
        """A signed-in wall's Cookie header for the relay (one commander session)."""
        if self._headers is None:
            from .auth_util import cookie_header, session_token

            self._headers = cookie_header(session_token(self.client,
                                                        prefix=self.settings.prefix))
        return self._headers

    def connect(self, query: str = "", **kwargs: Any) -> Any:
        """A signed-in websocket to the relay (`query` like "?since=3")."""
        from websockets.sync.client import connect

        return connect(self.ws_url + query, additional_headers=self.headers, **kwargs)

    def publish(self, kind: str, message: dict[str, Any] | str | bytes) -> None:
        raw = message if isinstance(message, str | bytes) else json.dumps(message,
                                                                          ensure_ascii=False)
        self.client.publish(f"{self.settings.prefix}{kind}", raw)

    def wait_seq(self, seq: int, timeout: float = 5.0) -> None:
        """Until ingest has applied changes up to `seq`."""
        deadline = time.monotonic() + timeout
        while int(self.client.get(f"{self.settings.prefix}seq") or 0) < seq:
            if time.monotonic() > deadline:
                raise TimeoutError(f"ingest did not reach seq {seq}")
            time.sleep(0.01)


def start_stack(redis_url: str, watch: bool = False, clock: Any = None,
                **overrides: Any) -> tuple[Stack, threading.Event, list[Any]]:
    """Ingest + relay threads, and the watch service (on `clock`) with `watch=True`."""
    # camera streams in tests come from demo video servers on free ports of this host: the
    # pages' CSP (callbacks/access/security.py) must let their pictures in
    options: dict[str, Any] = {"coalesce_s": 0.2, "media_sources": ("http://127.0.0.1:*",),
                               **overrides}
    settings = dataclasses.replace(Settings(), redis_url=redis_url, ws_port=free_port(),
                                   **options)
    stop = threading.Event()
    ingest = Ingest(settings, redis_url)
    relay = Relay(settings, redis_url)
    ready = threading.Event()
    threads = [
        threading.Thread(target=ingest.run, args=(stop,), daemon=True, name="ingest"),
        threading.Thread(target=relay.run, args=(stop, "127.0.0.1", settings.ws_port, ready),
                         daemon=True, name="relay"),
    ]
    watcher = Watch(settings, redis_url, clock=clock or now_ms) if watch else None
    if watcher is not None:
        threads.append(threading.Thread(target=watcher.run, args=(stop,), daemon=True,
                                        name="watch"))
    for thread in threads:
        thread.start()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    deadline = time.monotonic() + 10
    while not ready.is_set() or dict(client.pubsub_numsub(f"{settings.prefix}event")).get(
        f"{settings.prefix}event", 0
    ) < 1 or dict(client.pubsub_numsub(f"{settings.prefix}ui")).get(
        f"{settings.prefix}ui", 0
    ) < 1 or (watcher is not None and not client.exists(f"{settings.prefix}watch:hb")):
        if time.monotonic() > deadline:
            raise TimeoutError("ingest/relay/watch did not start")
        time.sleep(0.02)
    return Stack(settings, client, ingest, relay, watcher), stop, threads


@contextmanager
def running_stack(redis_url: str, **kwargs: Any) -> Iterator[Stack]:
    """`start_stack` for a `with` block: stopped and joined at its end."""
    live, stop, threads = start_stack(redis_url, **kwargs)
    try:
        yield live
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        live.client.close()


@pytest.fixture
def stack(redis_url: str) -> Iterator[Stack]:
    with running_stack(redis_url) as live:
        yield live


# -- browser (dash_duo): headless Debian chromium, so a plain `pytest` needs no flags -------


CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--window-size=1920,1080", "--force-device-scale-factor=1",
)


def pytest_setup_options() -> Any:
    """dash[testing]'s hook: the ChromeOptions dash_duo starts chromium with."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    return options


class ServerRunner:
    """What dash_duo serves the app with: dash's threaded runner, but stopped by shutting
    its server down. Dash's own stops a server by raising SystemExit in every thread started
    since it was made, which hit the stack's threads too (the relay's worker threads died
    printing "Exception in worker … SystemExit" after tests that had passed)."""

    def __init__(self) -> None:
        self.scheme, self.host, self.port = "http", "localhost", 0
        self.started = False
        self.keep_open = False
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self, app: Any, start_timeout: float = 3, **kwargs: Any) -> None:
        from werkzeug.serving import make_server

        self.stop()
        app.scripts.config.serve_locally = True
        app.css.config.serve_locally = True
        self.port = int(kwargs.get("port") or free_port())
        self._server = make_server("127.0.0.1", self.port, app.server, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="dash_duo server")
        self._thread.start()
        self.started = True

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self.started = False

    def __call__(self, app: Any, **kwargs: Any) -> None:
        self.start(app, **kwargs)

    def __enter__(self) -> ServerRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def dash_thread_server() -> Iterator[ServerRunner]:
    """dash[testing]'s server fixture (dash_duo's), replaced: see ServerRunner."""
    with ServerRunner() as runner:
        yield runner
