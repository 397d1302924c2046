"""The operator's commands, run as `python app.py adduser …` and `python app.py repair-clock`.

Each reaches the running app's embedded Valkey (its URL file in the data folder), else
REDIS_URL, else starts the data folder's embedded server for the moment.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Final

import redis

from dashboard import connect
from dashboard.access.audit import Audit
from dashboard.access.auth import ROLES, Auth, AuthError
from dashboard.access.keyfile import REDIS_PASSWORD, secret
from dashboard.config import Settings
from dashboard.store import Store
from feeds.redis_server import EmbeddedRedis

URL_FILE: Final = "url"  # in the embedded server's data folder while the app runs


def embedded_server(settings: Settings, maxmemory: str = "") -> EmbeddedRedis:
    """The embedded Valkey of the data folder (not started), with its password."""
    return EmbeddedRedis(Path(settings.data_dir) / "redis", persist=True, maxmemory=maxmemory,
                         password=secret(settings.data_dir, REDIS_PASSWORD))


def open_redis(settings: Settings) -> tuple[redis.Redis, EmbeddedRedis | None]:
    """REDIS_URL, else the running app's embedded server, else the embedded data started
    for the moment (and stopped by the caller)."""
    if settings.redis_url:
        return connect.open_redis(settings.redis_url, decode_responses=True), None
    folder = Path(settings.data_dir) / "redis"
    url_file = folder / URL_FILE
    if url_file.exists():
        client = connect.open_redis(url_file.read_text().strip(), decode_responses=True,
                                    socket_connect_timeout=1)
        try:
            client.ping()
            return client, None
        except redis.RedisError:
            client.close()  # a stale file: the app is not running
    embedded = embedded_server(settings).start()
    return connect.open_redis(embedded.url, decode_responses=True), embedded


def _read_password(prompt: str) -> str:
    """The password from stdin: without echo on a terminal, else the first line."""
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(prompt, stream=sys.stderr)
    return sys.stdin.readline().rstrip("\r\n")


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
    client, embedded = open_redis(settings)
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
    client, embedded = open_redis(settings)
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
