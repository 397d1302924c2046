"""Cluster throughput: valid messages/s through the ingest of one city and of two cities on
a three-master loopback Valkey Cluster (issue 15, item 5), against one city on one server.

Each city is a prefix with its own hash tag (`{pingdu}:`, and a second whose tag lands on
another master) and its own `python -m feeds.ingest` and `python -m feeds.relay` processes
with REDIS_URL the cluster's `redis+cluster://` URL, as in production. The load is
bench/ingest_throughput.py's mix (mostly worker moves), published by one process per city
with classic PUBLISH, pipelined, to the city's own master (a producer may publish to any
node; the cluster bus then carries it over, which this bench leaves out). The clock runs
from the first message published until every city has applied or rejected all of its.

    python -m bench.cluster [--messages N]     (per city; default 100,000)

Results: bench/results/cluster.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psutil
import redis
from redis.crc import key_slot

from bench.ingest_throughput import make_messages
from feeds.redis_cluster import SLOTS, LoopbackCluster
from feeds.redis_server import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "cluster.json"
MASTERS = 3
TAGS = ("pingdu", "laixi", "jiaozhou", "jimo", "huangdao")


def city_tags(n: int) -> list[str]:
    """`n` tags on different masters (slots split evenly, in order)."""
    out: list[str] = []
    for tag in TAGS:
        if all(key_slot(t.encode()) * MASTERS // SLOTS != key_slot(tag.encode()) * MASTERS
               // SLOTS for t in out):
            out.append(tag)
    return out[:n]


def _publish(port: int, password: str | None, prefix: str, n: int, ready: Any,
             go: Any) -> None:
    """A producer process: the mix, re-addressed to this city, after the common start."""
    messages = [(prefix + channel[3:], data) for channel, data in make_messages(n)]
    client = redis.Redis(port=port, password=password)
    ready.release()
    go.wait()
    for i in range(0, len(messages), 1000):
        pipe = client.pipeline(transaction=False)
        for channel, data in messages[i:i + 1000]:
            pipe.publish(channel, data)
        pipe.execute()


def _start(module: str, url: str, prefix: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "REDIS_URL": url, "CC_PREFIX": prefix, "PYTHONPATH": str(ROOT),
           "CC_WS_PORT": str(free_port())}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", module], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=out)


def _cpu(procs: dict[str, psutil.Process]) -> dict[str, float]:
    out = {}
    for name, proc in procs.items():
        times = proc.cpu_times()
        out[name] = times.user + times.system
    return out


def scenario(url: str, nodes: dict[str, redis.Redis], ports: dict[str, int],
             password: str | None, n: int, log: Path,
             servers: dict[str, int]) -> dict[str, Any]:
    """Ingest + relay per city (the keys of `nodes`), then the load into all at once.
    `servers`: name → pid of each Valkey process, whose CPU is measured with ours."""
    procs = {name: psutil.Process(pid) for name, pid in servers.items()}
    with ExitStack() as stack:
        for prefix in nodes:
            for module in ("feeds.ingest", "feeds.relay"):
                proc = _start(module, url, prefix, log)
                stack.callback(proc.wait, 10)
                stack.callback(proc.terminate)
                procs[f"{module.split('.')[1]} {prefix}"] = psutil.Process(proc.pid)
        deadline = time.monotonic() + 60
        for prefix, node in nodes.items():
            while not (node.exists(prefix + "ingest:hb") and node.exists(prefix + "relay:hb")):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{prefix}: ingest or relay did not start; see {log}")
                time.sleep(0.05)
        time.sleep(1.0)  # let the ingests load the city index before the clock starts
        ready, go = multiprocessing.Semaphore(0), multiprocessing.Event()
        producers = [multiprocessing.Process(target=_publish,
                                             args=(ports[p], password, p, n, ready, go))
                     for p in nodes]
        for proc in producers:
            proc.start()
        for _ in producers:  # each producer builds its messages first
            if not ready.acquire(timeout=120):
                raise RuntimeError("a producer did not get ready")
        load_before = os.getloadavg()
        cpu_before = _cpu(procs)
        start = time.perf_counter()
        go.set()
        done_at: dict[str, float] = {}
        deadline = time.monotonic() + 900
        while len(done_at) < len(nodes):
            for prefix, node in nodes.items():
                if prefix in done_at:
                    continue
                done = int(node.get(prefix + "seq") or 0) + int(
                    node.get(prefix + "deadletter:count") or 0)
                if done >= n:
                    done_at[prefix] = time.perf_counter() - start
            if time.monotonic() > deadline:
                raise RuntimeError(f"stalled: {done_at}; see {log}")
            time.sleep(0.005)
        cpu = {k: v - cpu_before[k] for k, v in _cpu(procs).items()}
        for proc in producers:
            proc.join(30)
        rejected = {p: int(node.get(p + "deadletter:count") or 0) for p, node in nodes.items()}
        wall_s = max(done_at.values())
    return {
        "cities": len(nodes),
        "messages_per_city": n,
        "per_city_per_s": {p: round(n / s) for p, s in done_at.items()},
        "total_per_s": round(n * len(nodes) / wall_s),
        "rejected": rejected,
        # CPU seconds each process spent per 10,000 messages of all cities together: what
        # the machine's other load does not change much, unlike the rates
        "cpu_s_per_10k": {k: round(v * 10_000 / (n * len(nodes)), 3) for k, v in cpu.items()},
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def run(n: int, password: str = "bench-cluster-pw") -> dict[str, Any]:
    result: dict[str, Any] = {"cpus": os.cpu_count(), "masters": MASTERS}
    with tempfile.TemporaryDirectory() as tmp:
        with EmbeddedRedis(Path(tmp) / "single", persist=False, password=password) as one:
            node = redis.Redis(port=one.port, password=password)
            assert one.process is not None
            result["one_server"] = scenario(one.url, {"{pingdu}:": node},
                                            {"{pingdu}:": one.port}, password, n,
                                            Path(tmp) / "single.log",
                                            {"valkey": one.process.pid})
        tags = city_tags(2)
        for count in (1, 2):
            with LoopbackCluster(Path(tmp) / f"cluster{count}", MASTERS,
                                 password=password) as cluster:
                prefixes = [f"{{{t}}}:" for t in tags[:count]]
                ports = {p: cluster.ports[key_slot(p[1:-2].encode()) * MASTERS // SLOTS]
                         for p in prefixes}
                nodes = {p: cluster.node(ports[p]) for p in prefixes}
                servers = {f"valkey :{port}" + "".join(f" {p}" for p in prefixes
                                                       if ports[p] == port): proc.pid
                           for port, proc in zip(cluster.ports, cluster.processes,
                                                 strict=True)}
                result[f"cluster_{count}"] = scenario(cluster.url, nodes, ports, password, n,
                                                      Path(tmp) / f"cluster{count}.log",
                                                      servers)
    return result


def summary(result: dict[str, Any]) -> str:
    def line(key: str) -> str:
        r = result[key]
        return (f"{key}: {r['total_per_s']} msg/s {r['per_city_per_s']} "
                f"(load {r['loadavg_before'][0]}→{r['loadavg_after'][0]})")

    return "cluster " + "; ".join(line(k) for k in ("one_server", "cluster_1", "cluster_2"))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000, help="per city")
    args = parser.parse_args(argv)
    result = run(args.messages)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    print(summary(result))
    return result


if __name__ == "__main__":
    main()
