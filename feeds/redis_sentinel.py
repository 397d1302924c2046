"""Valkey Sentinel on loopback: a primary, its replicas and three sentinels, all the Valkey
binary the project already ships (feeds/redis_server.py), for the tests, the failover bench
and an operator trying Sentinel out on one host.

    with SentinelSet(tmp, password="pw") as redis_set:
        redis_set.url                      # redis+sentinel://:pw@127.0.0.1:…,…/cc/0
        redis_set.kill_primary()           # SIGKILL, as a crash would
        redis_set.wait_promoted(old_port)  # when the sentinels named another primary

Sentinels need a quorum (2 of 3) to call the primary down; `down_after_ms` is short (1 s,
production keeps 5–30 s) so a drill sees the whole failover within seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Final
from urllib.parse import quote

import redis

from dashboard.access.keyfile import write_private
from feeds.redis_server import (
    EmbeddedRedis,
    free_port,
    server_binary,
    stop_process,
    wait_answering,
)

SERVICE: Final = "cc"
# Every node may become the primary: each syncs replicas without a disk round trip, at once.
REPLICATION_ARGS: Final = ("--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0")


class EmbeddedSentinel:
    """One sentinel process watching a loopback primary."""

    def __init__(self, data_dir: Path, primary_port: int, *, service: str = SERVICE,
                 quorum: int = 2, down_after_ms: int = 1000, failover_timeout_ms: int = 3000,
                 password: str | None = None, port: int | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.primary_port = primary_port
        self.service = service
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.password = password
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def _config(self) -> Path:
        """Sentinel rewrites its config file as it learns: one of its own, owner-only (it
        holds the data nodes' password)."""
        s = self.service
        lines = [
            f"port {self.port}", "bind 127.0.0.1", "daemonize no", f'dir "{self.data_dir}"',
            "logfile sentinel.log", "loglevel warning",
            f"sentinel monitor {s} 127.0.0.1 {self.primary_port} {self.quorum}",
            f"sentinel down-after-milliseconds {s} {self.down_after_ms}",
            f"sentinel failover-timeout {s} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {s} 1",
        ]
        if self.password:
            lines.append(f"sentinel auth-pass {s} {self.password}")
        path = self.data_dir / "sentinel.conf"
        write_private(path, "\n".join(lines) + "\n")
        return path

    def start(self, timeout: float = 10.0) -> EmbeddedSentinel:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [server_binary(), str(self._config()), "--sentinel"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_answering(self.process, self.client(), self.data_dir / "sentinel.log",
                           "sentinel", timeout)
        except RuntimeError:
            self.stop()
            raise
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5,
                           socket_timeout=1, decode_responses=True)

    def stop(self, timeout: float = 5.0) -> None:
        proc, self.process = self.process, None
        stop_process(proc, timeout)


class SentinelSet:
    """A primary, `replicas` replicas and `sentinels` sentinels on loopback."""

    def __init__(self, data_dir: Path, *, replicas: int = 1, sentinels: int = 3,
                 password: str | None = None, down_after_ms: int = 1000,
                 failover_timeout_ms: int = 3000, persist: bool = False) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.password = password
        primary = EmbeddedRedis(self.data_dir / "node0", persist=persist, password=password,
                                extra_args=REPLICATION_ARGS)
        self.nodes = [primary] + [
            EmbeddedRedis(self.data_dir / f"node{i + 1}", persist=persist, password=password,
                          replica_of=primary.port, extra_args=REPLICATION_ARGS)
            for i in range(replicas)]
        self.sentinels = [
            EmbeddedSentinel(self.data_dir / f"sentinel{i}", primary.port,
                             quorum=sentinels // 2 + 1, down_after_ms=down_after_ms,
                             failover_timeout_ms=failover_timeout_ms, password=password)
            for i in range(sentinels)]

    @property
    def url(self) -> str:
        """The `redis+sentinel://` URL every process is given (dashboard/connect.py)."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{auth}{hosts}/{SERVICE}/0"

    def start(self, timeout: float = 15.0) -> SentinelSet:
        for node in self.nodes:
            node.start()
        deadline = time.monotonic() + timeout
        primary = self.node_client(self.nodes[0])
        try:
            # the sentinels learn the replicas from the primary: let it know them first
            while int(primary.info("replication").get("connected_slaves", 0)) < len(
                    self.nodes) - 1:
                if time.monotonic() > deadline:
                    raise RuntimeError("replicas did not connect to the primary")
                time.sleep(0.05)
        finally:
            primary.close()
        for watcher in self.sentinels:
            watcher.start()
        # ready once every sentinel sees the others and the replicas (a failover needs both)
        while not all(self._informed(w) for w in self.sentinels):
            if time.monotonic() > deadline:
                raise RuntimeError("sentinels did not find each other and the replicas")
            time.sleep(0.1)
        return self

    def _informed(self, watcher: EmbeddedSentinel) -> bool:
        client = watcher.client()
        try:
            master = client.sentinel_master(SERVICE)
            return (int(master.get("num-other-sentinels", 0)) >= len(self.sentinels) - 1
                    and int(master.get("num-slaves", 0)) >= len(self.nodes) - 1)
        except redis.RedisError:
            return False
        finally:
            client.close()

    def node_client(self, node: EmbeddedRedis) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=node.port, password=self.password,
                           socket_connect_timeout=0.5, socket_timeout=2)

    def primary_port(self) -> int | None:
        """The primary's port as a majority of the sentinels name it (None: no majority)."""
        votes: dict[int, int] = {}
        for watcher in self.sentinels:
            if watcher.process is None:
                continue
            client = watcher.client()
            try:
                addr = client.sentinel_get_master_addr_by_name(SERVICE)
                if addr:
                    votes[int(addr[1])] = votes.get(int(addr[1]), 0) + 1
            except redis.RedisError:
                pass
            finally:
                client.close()
        for port, count in votes.items():
            if count > len(self.sentinels) // 2:
                return port
        return None

    def primary(self) -> EmbeddedRedis:
        port = self.primary_port()
        return next(n for n in self.nodes if n.port == port)

    def cut_replication(self) -> None:
        """Cut the replicas off the primary and keep them off (a wrong `masterauth`): what the
        primary acknowledges from now on reaches no replica, as when a crash comes just before
        asynchronous replication caught up, only longer and for certain. `kill_primary` next,
        then `restore_replication` so the promoted replica's peers can follow it."""
        primary = self.primary()
        for node in self.nodes:
            if node is not primary:
                client = self.node_client(node)
                client.config_set("masterauth", "cut-off")
                client.close()
        client = self.node_client(primary)
        client.client_kill_filter(_type="replica")
        client.close()

    def restore_replication(self, skip: int | None = None) -> None:
        """Give the replicas their `masterauth` back; `skip`: the port of a node that cannot
        answer (hung), which would only make this wait."""
        for node in self.nodes:
            if node.process is not None and node.port != skip:
                client = self.node_client(node)
                client.config_set("masterauth", self.password or "")
                client.close()

    def kill_primary(self) -> int:
        """SIGKILL the primary (no shutdown, no last sync): returns its port."""
        node = self.primary()
        assert node.process is not None
        os.kill(node.process.pid, signal.SIGKILL)
        node.process.wait(5)
        node.process = None
        return node.port

    def hang_primary(self) -> int:
        """SIGSTOP the primary: alive to TCP (no reset reaches its clients), answering nothing,
        as a server stuck in swap or a frozen VM; returns its port. `stop` wakes it to end it."""
        node = self.primary()
        assert node.process is not None
        os.kill(node.process.pid, signal.SIGSTOP)
        return node.port

    def wait_promoted(self, old_port: int, timeout: float = 30.0) -> float:
        """Block until a majority of sentinels name a primary other than `old_port` and it
        answers as a primary; returns the monotonic time that was first seen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            port = self.primary_port()
            if port is not None and port != old_port:
                node = next(n for n in self.nodes if n.port == port)
                client = self.node_client(node)
                try:
                    if client.info("replication").get("role") == "master":
                        return time.monotonic()
                except redis.RedisError:
                    pass
                finally:
                    client.close()
            time.sleep(0.01)
        raise TimeoutError(f"no primary promoted within {timeout}s")

    def stop(self) -> None:
        for watcher in self.sentinels:
            watcher.stop()
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                os.kill(node.process.pid, signal.SIGCONT)  # a hung one must hear SIGTERM
            node.stop()

    def __enter__(self) -> SentinelSet:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
