"""Secrets the server makes for itself on first start, kept in the data folder (CC_DATA_DIR):
never in the repository, never in Redis, readable by their owner only (files 0600 in a
0700 folder `secrets/`).

- `redis-password`: the embedded Valkey's `requirepass` (feeds/redis_server.py, app.py);
- `handover-key`: the HMAC-SHA256 key of the handover signatures (dashboard/duty/handover.py);
- `demo-password`: the demo users' password (app.py, demo mode only).

Two processes starting at once get the same secret: a new one is written complete under a
temporary name and then linked into place, so nobody reads it half written.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Final

log = logging.getLogger("cc.keyfile")

SECRETS_DIR: Final = "secrets"
REDIS_PASSWORD: Final = "redis-password"
HANDOVER_KEY: Final = "handover-key"
DEMO_PASSWORD: Final = "demo-password"


def secret_path(data_dir: Path | str, name: str) -> Path:
    return Path(data_dir) / SECRETS_DIR / name


def _private(path: Path, mode: int) -> None:
    """Narrow a secret's permissions that someone widened (a copy, a restore from backup)."""
    current = stat.S_IMODE(path.stat().st_mode)
    if current & 0o077:
        log.warning("%s was readable by others (mode %o): set to %o", path, current, mode)
        path.chmod(mode)


def _write_new(path: Path, value: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(value + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails when another process was first: keep theirs
        except FileExistsError:
            pass
        except OSError:
            # a file system without hard links: exclusive create, written at once
            try:
                fd2 = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return
            with os.fdopen(fd2, "w") as f:
                f.write(value + "\n")
    finally:
        tmp.unlink(missing_ok=True)


def _hex32() -> str:
    return secrets.token_hex(32)


def secret(data_dir: Path | str, name: str, new: Callable[[], str] = _hex32) -> str:
    """The secret `name` of this data folder, made by `new()` (32 random bytes as hex) when it
    does not exist yet. RuntimeError for an empty file (never silently a weak secret)."""
    folder = Path(data_dir) / SECRETS_DIR
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    _private(folder, 0o700)
    path = folder / name
    if not path.exists():
        _write_new(path, new())
    _private(path, 0o600)
    value = path.read_text().strip()
    if not value:
        raise RuntimeError(f"{path} is empty: remove it and a new one is made at the next start")
    return value


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, owner-only from the first byte (a file that carries a
    secret: the running server's URL, the demo's kiosk token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
