"""What every `python -m feeds.X` process shares: logging, settings, stop on SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
from collections.abc import Callable

from dashboard.config import Settings
from dashboard.connect import check_prefix
from dashboard.ops import logs


def run_service(name: str, body: Callable[[Settings, str, threading.Event], None]) -> None:
    """Run `body(settings, redis_url, stop)` until a signal sets `stop`."""
    settings = Settings.from_env()
    logs.configure(settings.log_format, name.removeprefix("feeds."))
    logging.getLogger("cc.service").info("%s starting", name)  # one line to know it ran
    if not settings.redis_url:
        raise SystemExit(f"{name} needs REDIS_URL")
    try:
        check_prefix(settings.redis_url, settings.prefix)
    except ValueError as exc:
        raise SystemExit(f"{name}: {exc}") from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    body(settings, settings.redis_url, stop)


def instance_id() -> str:
    """`host:pid:random`: names one process of a kind among others on any host (a restarted
    one, with the same pid in a container, is still another)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
