"""How many walls one relay serves: publish → frame at each wall, against bare broadcast.

Starts the real stack (`python app.py`, the demo city at 1×: 2,140 workers, 347 resources,
3,000 cameras moving and reporting) on its own embedded Valkey. Walls are websocket clients
in their own processes (`--client`), signed in with one session, reading raw bytes: they
answer pings and look for probe ids in what arrives, nothing more, so their cost stays
small and is recorded beside the relay's. Probes are events published on `cc:event` ~150 ms
apart; each wall notes when each probe first reached it.

Rounds, each for every count of walls in `--walls`:
- relay: the product's relay (one process, as `make run` starts it);
- relays ×2: a second relay process on another port, walls split between the two;
- bare: the limit on this machine, a websockets server doing nothing but
  `websockets.broadcast` of the relay's own frames (it is one wall of the relay: the same
  bytes, coalesced as the relay sends them) to every socket, after the snapshot it got;
- deflate: the relay with CC_WS_COMPRESSION=deflate (its walls decompress), at the counts
  in `--deflate-walls`;
- before: with `--before DIR` (a checkout of an older commit), that checkout's relay, at
  the counts in `--before-walls`.

    python -m bench.walls [--walls 100,300,500,700] [--probes 60] [--procs 4]
                          [--before /tmp/old --before-walls 100]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from bench.latency import OUT, PROBE_LAT, PROBE_LON, load, terminate, wait_for
from feeds.redis_server import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parent.parent
PROBE = re.compile(rb'"(probe-\d+-\d+)"')
SNAPSHOT = b'"type":"snapshot"'

# -- one process of walls -----------------------------------------------------------------


class Wall(asyncio.Protocol):
    """One websocket, read raw: frames are walked only to answer pings; probe ids are found
    in the stream (server frames are unmasked, so the JSON is there as sent)."""

    def __init__(self, host: str, path: str, cookie: str, deflate: bool) -> None:
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
                        + ("Sec-WebSocket-Extensions: permessage-deflate; "
                           "client_max_window_bits\r\n" if deflate else "")
                        + f"Cookie: cc_session={cookie}\r\n\r\n").encode()
        self.deflate = deflate
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.skip = 0  # payload bytes of the current frame still to pass over
        self.opcode = 0
        self.payload = bytearray()  # kept only with deflate (to inflate) or for a ping
        self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self.compressed = False
        self.fin = True
        self.tail = b""
        self.seen: dict[str, float] = {}
        self.snapshots = 0
        self.closed = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in self.buf[:end]:
                self.closed = True
                return
            self.upgraded = True
            del self.buf[:end + 4]
        self._frames(now)

    def _look(self, chunk: bytes, now: float) -> None:
        text = self.tail + chunk
        if text.find(SNAPSHOT, max(0, len(self.tail) - len(SNAPSHOT) + 1)) >= 0:
            self.snapshots += 1
        for match in PROBE.finditer(text):
            self.seen.setdefault(match.group(1).decode(), now)
        self.tail = text[-40:]

    def _frames(self, now: float) -> None:
        buf, pos = self.buf, 0
        while True:
            if self.skip:
                n = min(self.skip, len(buf) - pos)
                chunk = bytes(buf[pos:pos + n])
                pos += n
                self.skip -= n
                if self.deflate or self.opcode == 9:
                    self.payload += chunk
                else:
                    self._look(chunk, now)
                if self.skip:
                    break
                self._frame_done(now)
                continue
            if len(buf) - pos < 2:
                break
            b0, b1 = buf[pos], buf[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                head = 4
            elif length == 127:
                head = 10
            if len(buf) - pos < head:
                break
            if head > 2:
                length = int.from_bytes(buf[pos + 2:pos + head], "big")
            opcode = b0 & 0x0F
            if opcode:  # 0 continues the message's own opcode
                self.opcode = opcode
                self.compressed = bool(b0 & 0x40)
            pos += head
            self.skip = length
            self.fin = bool(b0 & 0x80)
            if length == 0:
                self._frame_done(now)
        del buf[:pos]

    def _frame_done(self, now: float) -> None:
        if self.opcode == 9:  # ping: a masked pong with its payload
            payload = bytes(self.payload[:125])
            mask = os.urandom(4)
            masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            assert self.transport is not None
            self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + mask + masked)
            self.payload.clear()
        elif self.opcode == 8:
            self.closed = True
        elif self.deflate and self.fin:
            data = bytes(self.payload)
            self.payload.clear()
            if self.compressed:
                data = self.inflater.decompress(data + b"\x00\x00\xff\xff")
            self._look(data, now)


async def _client(url: str, n: int, cookie: str, deflate: bool) -> None:
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    loop = asyncio.get_running_loop()
    walls: list[Wall] = []
    for i in range(n):
        wall = Wall(host_port, "/", cookie, deflate)
        await loop.create_connection(lambda w=wall: w, host, int(port))  # type: ignore[misc]
        walls.append(wall)
        if i % 20 == 19:  # a gentle ramp: the count is the point, not a connect storm
            await asyncio.sleep(0.05)
    deadline = time.monotonic() + 120
    while sum(w.snapshots > 0 or w.closed for w in walls) < n:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    cpu0 = os.times()
    print(json.dumps({"ready": sum(w.snapshots > 0 for w in walls)}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # "stop"
    cpu1 = os.times()
    print(json.dumps({
        "seen": [w.seen for w in walls],
        "snapshots": [w.snapshots for w in walls],
        "closed": sum(w.closed for w in walls),
        "cpu_s": (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system),
    }), flush=True)


# -- the bare broadcast -------------------------------------------------------------------


async def _bare(port: int, relay_url: str, cookie: str) -> None:
    """The limit: the relay's own frames, as one wall receives them, rebroadcast with
    websockets' `broadcast` and nothing else (no queues, no scope, no session)."""
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import broadcast, serve

    conns: set[Any] = set()
    snapshot: list[str] = []

    async def handler(ws: Any) -> None:
        await ws.send(snapshot[0])
        conns.add(ws)
        try:
            await ws.wait_closed()
        finally:
            conns.discard(ws)

    async with connect(relay_url, additional_headers={"Cookie": f"cc_session={cookie}"},
                       compression=None, max_size=None) as feed:
        snapshot.append(str(await feed.recv()))
        async with serve(handler, "127.0.0.1", port, compression=None, max_size=2**16):
            async for message in feed:
                broadcast(conns, message)


# -- the bench ----------------------------------------------------------------------------


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> dict[str, int]:
    """The stack's processes by role (`python -m feeds.relay` → relay)."""
    out: dict[str, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            status = (proc / "status").read_text()
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(re.search(r"PPid:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        if ppid == pid and b"-m" in cmd:
            out[cmd[cmd.index(b"-m") + 1].decode()] = int(proc.name)
    return out


@contextmanager
def _stack(data: str, redis_url: str) -> Iterator[dict[str, Any]]:
    """`python app.py` with the demo at 1× on `redis_url`; yields its ports and pids."""
    port, ws_port = free_port(), free_port()
    env = {**os.environ, "CC_SIM_RATE": "1", "CC_DATA_DIR": data, "REDIS_URL": redis_url,
           "CC_WS_PER_SESSION": "100000", "CC_DEMO_HISTORY_DAYS": "0"}  # as measured before
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--ws-port",
                             str(ws_port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: "feeds.relay" in _children(proc.pid), 60, "the relay")
        yield {"ws_port": ws_port, "pid": proc.pid, "env": env}
    finally:
        terminate(proc, 20)


@contextmanager
def _server(argv: list[str], env: dict[str, str], port: int,
            cwd: Path = ROOT) -> Iterator[int]:
    """A second relay or the bare server on `port`; yields its pid once it listens."""
    import socket

    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_for(listening, 30, f"a server on {port}")
        yield proc.pid
    finally:
        terminate(proc, 10)


def _round(ports: list[int], pids: list[int], walls: int, procs: int, cookie: str,
           r: redis.Redis, probes: int, tag: str, deflate: bool = False) -> dict[str, Any]:
    """`walls` walls over `procs` client processes spread over `ports`; probes; figures."""
    clients = []
    for i in range(procs):
        n = walls // procs + (1 if i < walls % procs else 0)
        port = ports[i % len(ports)]
        clients.append(subprocess.Popen(
            [sys.executable, "-m", "bench.walls", "--client", f"ws://127.0.0.1:{port}/",
             "--n", str(n), "--cookie", cookie] + (["--deflate"] if deflate else []),
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    ready = sum(json.loads(c.stdout.readline() or '{"ready": 0}')["ready"]  # type: ignore
                for c in clients)
    time.sleep(2.0)
    rng = random.Random(7)
    cpu0 = [_cpu_s(p) for p in pids]
    t0 = time.monotonic()
    load_before = load()
    sent: dict[str, float] = {}
    for n in range(probes):
        pid = f"probe-{tag}-{n}"
        msg = json.dumps({"id": pid, "type": "fire", "severity": 2, "lon": PROBE_LON,
                          "lat": PROBE_LAT, "ts": int(time.time() * 1000),
                          "title": "walls probe", "source": "other"})
        sent[pid] = time.time()
        r.publish("cc:event", msg)
        time.sleep(rng.uniform(0.1, 0.2))
    time.sleep(3.0)
    elapsed = time.monotonic() - t0
    server_cpu = [(_cpu_s(p) - c) / elapsed for p, c in zip(pids, cpu0, strict=True)]
    load_during = load()
    lat: list[float] = []
    missing = closed = resyncs = 0
    client_cpu = 0.0
    for c in clients:
        c.stdin.write("stop\n")  # type: ignore[union-attr]
        c.stdin.flush()  # type: ignore[union-attr]
        out = json.loads(c.stdout.readline())  # type: ignore[union-attr]
        c.wait(30)
        closed += out["closed"]
        client_cpu += out["cpu_s"]
        resyncs += sum(max(0, s - 1) for s in out["snapshots"])
        for seen in out["seen"]:
            for pid, t in sent.items():
                if pid in seen:
                    lat.append((seen[pid] - t) * 1000)
                else:
                    missing += 1
    lat.sort()

    def pct(q: float) -> float:
        return round(lat[min(len(lat) - 1, int(q * len(lat)))], 1) if lat else float("nan")

    return {"walls": walls, "ready": ready, "probes": probes, "delivered": len(lat),
            "missing": missing, "closed": closed, "resyncs": resyncs,
            "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": round(lat[-1], 1) if lat else None,
            "server_cpu": [round(x, 3) for x in server_cpu],
            "clients_cpu": round(client_cpu / elapsed, 3),
            "load": {"before": load_before["loadavg"], "during": load_during["loadavg"]}}


def run(walls: list[int], probes: int, procs: int, deflate_walls: list[int],
        pairs: bool = True, before: Path | None = None,
        before_walls: tuple[int, ...] = ()) -> dict[str, Any]:
    from dashboard.access.auth import Auth
    from dashboard.config import Settings

    result: dict[str, Any] = {"cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
                              "rounds": []}
    with tempfile.TemporaryDirectory() as data, \
            EmbeddedRedis(Path(data) / "redis", persist=False) as server, \
            _stack(data, server.url) as stack:
        r = redis.Redis.from_url(server.url, decode_responses=True)
        auth = Auth(r, "cc:", Settings())
        auth.add_user("bench-walls", "leader", "Bench-walls-pw1", None)
        cookie = auth.login("bench-walls", "Bench-walls-pw1", "127.0.0.1").token  # type: ignore
        wait_for(lambda: r.hlen("cc:state:worker") >= 2000, 180, "the demo's workers")
        time.sleep(10)  # the simulator's warm-up burst is over
        relay = _children(stack["pid"])["feeds.relay"]
        snap = _snapshot_size(stack["ws_port"], cookie)
        result["snapshot_bytes"] = snap
        env = stack["env"]
        bare_port, second_port = free_port(), free_port()
        tag = 0
        for n in walls:
            for mode in ("relay", "bare") + (("relays x2",) if pairs else ()):
                tag += 1
                print(f"== {mode}, {n} walls", flush=True)
                if mode == "relay":
                    got = _round([stack["ws_port"]], [relay], n, procs, cookie, r, probes,
                                 str(tag))
                elif mode == "bare":
                    with _server([sys.executable, "-m", "bench.walls", "--bare",
                                  str(bare_port), f"ws://127.0.0.1:{stack['ws_port']}/",
                                  cookie], env, bare_port) as bare:
                        got = _round([bare_port], [bare], n, procs, cookie, r, probes, str(tag))
                else:
                    with _server([sys.executable, "-m", "feeds.relay"],
                                 {**env, "CC_WS_PORT": str(second_port)}, second_port) as two:
                        got = _round([stack["ws_port"], second_port], [relay, two], n, procs,
                                     cookie, r, probes, str(tag))
                got["mode"] = mode
                print(json.dumps(got), flush=True)
                result["rounds"].append(got)
        if deflate_walls:
            print("== deflate: a relay with CC_WS_COMPRESSION=deflate", flush=True)
            with _server([sys.executable, "-m", "feeds.relay"],
                         {**env, "CC_WS_PORT": str(second_port), "CC_WS_COMPRESSION": "deflate"},
                         second_port) as deflating:
                result["snapshot_bytes_deflate"] = _snapshot_size(second_port, cookie, True)
                for n in deflate_walls:
                    tag += 1
                    got = _round([second_port], [deflating], n, procs, cookie, r, probes,
                                 str(tag), deflate=True)
                    got["mode"] = "deflate"
                    print(json.dumps(got), flush=True)
                    result["rounds"].append(got)
        if before is not None:
            print(f"== before: the relay of {before}", flush=True)
            with _server([sys.executable, "-m", "feeds.relay"],
                         {**env, "CC_WS_PORT": str(second_port)}, second_port,
                         cwd=before) as old:
                for n in before_walls:
                    tag += 1
                    got = _round([second_port], [old], n, procs, cookie, r, probes, str(tag),
                                 deflate=True)  # it compressed every frame for every wall
                    got["mode"] = "before"
                    print(json.dumps(got), flush=True)
                    result["rounds"].append(got)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "walls.json").write_text(json.dumps(result, indent=1))
    return result


def _snapshot_size(port: int, cookie: str, deflate: bool = False) -> int:
    """Bytes on the wire of one city-wide snapshot (with deflate: compressed)."""
    from websockets.sync.client import connect

    got: list[int] = []

    with connect(f"ws://127.0.0.1:{port}/", additional_headers={
            "Cookie": f"cc_session={cookie}"}, max_size=None,
            compression="deflate" if deflate else None) as ws:
        text = ws.recv(timeout=30)
        raw = text.encode() if isinstance(text, str) else text
        got.append(len(zlib.compress(raw, 6)) if deflate else len(raw))
    return got[0]


def summary(result: dict[str, Any]) -> str:
    lines = [f"walls per relay, snapshot {result['snapshot_bytes'] / 1e6:.2f} MB"
             "   mode / walls: p50 / p99 / max ms, delivered, missing, resyncs, "
             "server CPU, clients CPU, load"]
    for g in result["rounds"]:
        lines.append(f"  {g['mode']:>10} {g['walls']:>5}: {g['p50_ms']} / {g['p99_ms']} / "
                     f"{g['max_ms']}  {g['delivered']} {g['missing']} {g['resyncs']}  "
                     f"{g['server_cpu']} {g['clients_cpu']}  {g['load']['during']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(prog="python -m bench.walls",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--walls", default="100,300,500,700")
    parser.add_argument("--deflate-walls", default="100")
    parser.add_argument("--probes", type=int, default=60)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--no-pairs", action="store_true", help="skip the two-relay rounds")
    parser.add_argument("--before", type=Path, help="a checkout whose relay to compare")
    parser.add_argument("--before-walls", default="100")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cookie", help=argparse.SUPPRESS)
    parser.add_argument("--deflate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bare", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        asyncio.run(_client(args.client, args.n, args.cookie, args.deflate))
        return None
    if args.bare:
        asyncio.run(_bare(int(args.bare[0]), args.bare[1], args.bare[2]))
        return None
    result = run([int(x) for x in args.walls.split(",") if x], args.probes, args.procs,
                 [int(x) for x in args.deflate_walls.split(",") if x], not args.no_pairs,
                 args.before, tuple(int(x) for x in args.before_walls.split(",") if x))
    print(summary(result))
    return result


if __name__ == "__main__":
    main()
