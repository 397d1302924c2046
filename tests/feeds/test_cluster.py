"""Two cities on one three-master Valkey Cluster (issue 15, item 5): each city's prefix has a
hash tag, so all its keys and its sharded `ui` channel live in one slot, and the two tags land
on different masters. Each city runs its own ingest, relay and watch; events published into
each reach only that city's signed-in wall; a dispatch through each city's HTTP API and each
cockpit's /api/stats work; no key, frame or session crosses from one city to the other.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.crc import key_slot
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from dashboard.config import Settings
from dashboard.connect import check_prefix, home_node, open_redis, parse_cluster_url
from dashboard.models import KINDS
from dashboard.store import Store
from feeds.ingest import Ingest
from feeds.redis_cluster import SLOTS, LoopbackCluster
from feeds.redis_server import free_port
from feeds.relay import Relay
from feeds.streams import StreamInput
from feeds.watch import Watch

from ..auth_util import cookie_header, session_token, sign_in
from ..units_util import TS, east
from .test_relay import frames as relay_frames

pytestmark = pytest.mark.slow  # a cluster and two whole stacks: seconds of real work

MASTERS = 3
ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = ("pingdu", "laixi", "jiaozhou", "jimo", "huangdao", "laoshan", "chengyang")


def master_of(tag: str) -> int:
    """Which of the loopback cluster's masters holds the tag (equal slot ranges, in order)."""
    return key_slot(tag.encode()) * MASTERS // SLOTS


def two_tags() -> tuple[str, str]:
    """Two city names whose hash tags land on different masters."""
    first = CANDIDATES[0]
    second = next(t for t in CANDIDATES[1:] if master_of(t) != master_of(first))
    return first, second


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackCluster]:
    with LoopbackCluster(tmp_path_factory.mktemp("cluster"), MASTERS,
                         password="cluster-test-pw") as running:
        yield running


@dataclasses.dataclass
class City:
    settings: Settings
    client: redis.RedisCluster
    relay: Relay

    @property
    def prefix(self) -> str:
        return self.settings.prefix

    def publish(self, kind: str, message: dict[str, Any]) -> None:
        """As an outside producer does (docs/PROTOCOL.md): classic PUBLISH on `P{kind}`."""
        self.client.publish(f"{self.prefix}{kind}", json.dumps(message, ensure_ascii=False))

    def wait_seq(self, seq: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while int(self.client.get(f"{self.prefix}seq") or 0) < seq:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.prefix} did not reach seq {seq}")
            time.sleep(0.02)

    def wall(self, token: str) -> ClientConnection:
        return connect(f"ws://127.0.0.1:{self.settings.ws_port}/ws",
                       additional_headers=cookie_header(token), open_timeout=5)


def _subscribed(client: redis.RedisCluster, prefix: str) -> bool:
    """Ingest listens on `P event` and the relay on the sharded `P ui`, both where the slot
    lives (a classic PUBLISH reaches every node; SPUBLISH only the slot's)."""
    node = home_node(client, prefix)
    plain = dict(node.pubsub_numsub(f"{prefix}event")).get(f"{prefix}event", 0)
    shard = node.execute_command("PUBSUB", "SHARDNUMSUB", f"{prefix}ui")
    return plain >= 1 and int(shard[1]) >= 1


@contextmanager
def city(url: str, tag: str, ingests: int = 1) -> Iterator[City]:
    """Ingest (`ingests` of them: one active, the rest standby), relay and watch of one city
    in threads, on the cluster."""
    settings = dataclasses.replace(Settings(), redis_url=url, prefix=f"{{{tag}}}:",
                                   ws_port=free_port(), coalesce_s=0.2)
    stop = threading.Event()
    ready = threading.Event()
    relay = Relay(settings, url)
    threads = [
        *(threading.Thread(target=Ingest(settings, url).run, args=(stop,), daemon=True)
          for _ in range(ingests)),
        threading.Thread(target=relay.run, args=(stop, "127.0.0.1", settings.ws_port, ready),
                         daemon=True),
        threading.Thread(target=Watch(settings, url).run, args=(stop,), daemon=True),
    ]
    for thread in threads:
        thread.start()
    client = open_redis(url, decode_responses=True)
    try:
        deadline = time.monotonic() + 20
        while not (ready.is_set() and _subscribed(client, settings.prefix)
                   and client.exists(f"{settings.prefix}watch:hb")):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{tag}: ingest/relay/watch did not start")
            time.sleep(0.05)
        yield City(settings, client, relay)
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        client.close()


def frames(ws: ClientConnection, until: Any, timeout: float = 8.0) -> list[dict[str, Any]]:
    """test_relay's reader with the longer wait a cluster's start-up needs."""
    return relay_frames(ws, until, timeout)


def delta_ids(got: list[dict[str, Any]], kind: str) -> set[str]:
    ids = set()
    for frame in got:
        for one in frame.get("frames", [frame]):  # a batch holds frames
            if one.get("type") == "delta" and one.get("kind") == kind:
                ids.add(str(one["data"]["id"]))
    return ids


def scene(c: City, tag: str) -> None:
    """One open event and a worker 200 m from it, in this city."""
    lon, lat = east(0)
    c.publish("event", {"id": f"E-{tag}", "type": "dispute", "severity": 3, "lon": lon,
                        "lat": lat, "ts": TS, "title": f"{tag} 邻里纠纷"})
    lon, lat = east(200)
    c.publish("worker", {"id": f"W-{tag}", "lon": lon, "lat": lat, "ts": TS,
                         "name": "李强", "status": "on_duty"})


def test_clu001_a_cluster_url_names_its_nodes_and_password() -> None:
    nodes, options = parse_cluster_url("redis+cluster://:p%40ss@10.0.0.1:7000,10.0.0.2:7001")
    assert nodes == [("10.0.0.1", 7000), ("10.0.0.2", 7001)]
    assert options == {"password": "p@ss", "ssl": False}
    assert parse_cluster_url("rediss+cluster://u:pw@h:1")[1] == {
        "username": "u", "password": "pw", "ssl": True}
    with pytest.raises(ValueError, match="host:port"):
        parse_cluster_url("redis+cluster://nohost")
    # a process started on a cluster with an untagged prefix stops at once, saying why
    env = {**os.environ, "REDIS_URL": "redis+cluster://127.0.0.1:1", "CC_PREFIX": "cc:"}
    done = subprocess.run([sys.executable, "-m", "feeds.ingest"], env=env, timeout=60,
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode != 0 and "needs a hash tag" in done.stderr, done.stderr


def test_clu002_an_untagged_prefix_is_refused_on_a_cluster(cluster: LoopbackCluster) -> None:
    client = open_redis(cluster.url)
    try:
        for bad in ("cc:", "{}cc:", "cc:{"):
            with pytest.raises(ValueError, match="hash tag"):
                Store(client, bad)
        check_prefix(client, "{pingdu}:")
        Store(client, "{pingdu}:")
    finally:
        client.close()


def test_clu003_two_cities_side_by_side(cluster: LoopbackCluster) -> None:
    from app import create_app

    tags = two_tags()
    with city(cluster.url, tags[0]) as a, city(cluster.url, tags[1]) as b:
        cities = {tags[0]: a, tags[1]: b}
        tokens = {t: session_token(c.client, prefix=c.prefix) for t, c in cities.items()}
        with ExitStack() as opened:
            walls = {t: opened.enter_context(c.wall(tokens[t])) for t, c in cities.items()}
            for wall in walls.values():
                first = frames(wall, lambda g: any(f["type"] == "snapshot" for f in g))
                assert first[-1]["type"] == "snapshot"
            # the feed: events into each city, through its ingest, to its wall only
            for t, c in cities.items():
                for i in range(5):
                    c.publish("event", {"id": f"ev-{t}-{i}", "type": "dispute", "severity": 4,
                                        "lon": 119.96, "lat": 36.78, "ts": TS + i})
            for t, wall in walls.items():
                want = {f"ev-{t}-{i}" for i in range(5)}
                got = frames(wall, lambda g, w=want: w <= delta_ids(g, "event"))
                assert not any(i.startswith("ev-") and not i.startswith(f"ev-{t}-")
                               for i in delta_ids(got, "event"))

            # a session of one city opens no wall of the other
            other = opened.enter_context(cities[tags[1]].wall(tokens[tags[0]]))
            with pytest.raises(ConnectionClosed) as closed:
                other.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401

            # dispatch through each city's own HTTP API; the outbound message on its channel
            outbound = {t: c.client.pubsub(ignore_subscribe_messages=True)
                        for t, c in cities.items()}
            for t, c in cities.items():
                outbound[t].subscribe(f"{c.prefix}dispatch")
                scene(c, t)
            tasks, reports = {}, {}
            for t, c in cities.items():
                c.wait_seq(7)  # 5 events, the scene's event and worker
                web = create_app(c.settings).server.test_client()
                sign_in(web, c.client, "commander", prefix=c.prefix)
                res = web.post(f"/api/events/E-{t}/dispatch",
                               json={"key": f"click-{t}", "plan_id": "P-DISPUTE-01",
                                     "assignees": [{"id": f"W-{t}", "kind": "worker"}]})
                assert res.status_code == 201, res.get_json()
                tasks[t] = res.get_json()["task"]["id"]
                # a report through the API goes the feed's way: PUBLISH to the city's ingest
                res = web.post("/api/events", json={"type": "dispute", "severity": 4,
                                                    "lon": 119.95, "lat": 36.78})
                assert res.status_code == 201, res.get_json()
                reports[t] = res.get_json()["event"]["id"]
                health = web.get("/api/health").get_json()
                assert health["status"] == "ok", health
                # /metrics reads the city's master (its subscribers, its memory)
                text = web.get("/metrics").get_data(as_text=True)
                assert "cc_redis_up 1" in text and "cc_redis_pubsub_clients" in text, text
                # the cockpit of each city answers with its own figures
                leader = create_app(c.settings).server.test_client()
                sign_in(leader, c.client, "leader", prefix=c.prefix)
                stats = leader.get("/api/stats")
                assert stats.status_code == 200, stats.get_data(as_text=True)
                assert leader.get("/api/stats").headers["X-Cache"] == "hit"
            for t, wall in walls.items():
                frames(wall, lambda g, t=t: tasks[t] in delta_ids(g, "task")
                       and reports[t] in delta_ids(g, "event"))
            for t, c in cities.items():
                deadline = time.monotonic() + 5
                while (msg := outbound[t].get_message(timeout=0.5)) is None:
                    assert time.monotonic() < deadline, f"no dispatch message in {t}"
                assert json.loads(msg["data"])["task_id"] == tasks[t]
                outbound[t].close()
                # the watch service follows each city's log (its heartbeat says so once a
                # second: wait for the next one)
                deadline = time.monotonic() + 5
                while int((hb := c.client.hgetall(f"{c.prefix}watch:hb")).get("cursor")
                          or 0) < 7:
                    assert time.monotonic() < deadline, hb
                    time.sleep(0.1)

        # every key of each city sits in its own slot, on its own master
        slots = {t: key_slot(t.encode()) for t in tags}
        seen = {t: 0 for t in tags}
        for port in cluster.ports:
            node = cluster.node(port, decode_responses=True)
            for key in node.scan_iter(count=1000):
                t = next(t for t in tags if key.startswith(f"{{{t}}}:"))
                assert key_slot(key.encode()) == slots[t], key
                assert cluster.ports.index(port) == master_of(t), key
                seen[t] += 1
            node.close()
        assert all(n > 20 for n in seen.values()), seen
        # the cockpit's cache is the city's too
        assert home_node(a.client, a.prefix).keys(f"{a.prefix}cache:*")


def test_clu004_a_tagged_prefix_works_on_one_server(redis_url: str) -> None:
    """The same tagged prefix on a single server: sharded pub/sub there too, nothing else
    changes (so a city can move onto a cluster with its prefix)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    settings = dataclasses.replace(Settings(), redis_url=redis_url, prefix="{pingdu}:",
                                   ws_port=free_port(), coalesce_s=0.2)
    stop, ready = threading.Event(), threading.Event()
    threads = [threading.Thread(target=Ingest(settings, redis_url).run, args=(stop,),
                                daemon=True),
               threading.Thread(target=Relay(settings, redis_url).run,
                                args=(stop, "127.0.0.1", settings.ws_port, ready), daemon=True)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 10
        while not (ready.is_set() and client.exists("{pingdu}:ingest:hb") and int(
                client.execute_command("PUBSUB", "SHARDNUMSUB", "{pingdu}:ui")[1]) >= 1):
            assert time.monotonic() < deadline, "ingest/relay did not start"
            time.sleep(0.02)
        token = session_token(client, prefix=settings.prefix)
        with connect(f"ws://127.0.0.1:{settings.ws_port}/ws",
                     additional_headers=cookie_header(token)) as wall:
            frames(wall, lambda g: any(f["type"] == "snapshot" for f in g))
            client.publish("{pingdu}:event", json.dumps(
                {"id": "ev-1", "type": "dispute", "severity": 4, "lon": 119.96, "lat": 36.78,
                 "ts": TS}))
            frames(wall, lambda g: "ev-1" in delta_ids(g, "event"))
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        client.close()


def test_clu005_the_cockpit_history_and_its_archive_on_a_cluster(
        cluster: LoopbackCluster) -> None:
    """The cockpit's fixed history played into one city on the cluster through the real
    paths (apply script, desk, alert scripts, watch): the figures equal the hand count, and
    archiving (one script over many keys, transactions) keeps them."""
    from dashboard.archive.events import Archive
    from dashboard.archive.stats import Figures
    from dashboard.city import load_city

    from ..archive.test_stats import check
    from ..cockpit_util import load_history, now_ms

    settings = dataclasses.replace(Settings(), prefix="{cockpit}:")
    client = open_redis(cluster.url, decode_responses=True)
    try:
        load_history(client, settings)
        store = Store(client, settings.prefix)
        figures = Figures(store, load_city(), settings)
        before = figures.figures(None, now_ms())
        check(before, None)
        archive = Archive(store, settings)
        assert archive.run(now_ms()) == 8  # E05–E12, as on one server (tests/archive)
        assert len(archive.frame(with_ids=True)) == 8
        after = figures.figures(None, now_ms())
        assert after["version"] > before["version"]
        assert {k: v for k, v in after.items() if k != "version"} == \
            {k: v for k, v in before.items() if k != "version"}
    finally:
        client.close()


def test_clu006_handover_tracks_and_sign_in_on_a_cluster(cluster: LoopbackCluster) -> None:
    """What the drill above does not reach: the handover's WATCH/MULTI and its script, track
    compaction (SCAN + scripts in a pipeline), failed log-ins' counting script, a stream
    producer (XREADGROUP over all kinds at once), and a standby ingest beside the active."""
    from dashboard.access.auth import Auth
    from dashboard.archive.tracks import Fix, Tracks
    from dashboard.duty.handover import Handovers
    from dashboard.duty.roster import RosterStore

    from ..auth_util import make_user
    from ..cockpit_util import Clock

    prefix = "{duty}:"  # a city of its own: the other tests write tracks too
    client = open_redis(cluster.url, decode_responses=True)
    try:
        store = Store(client, prefix)
        clock = Clock(TS)
        books = Handovers(store, dataclasses.replace(Settings(), prefix=prefix),
                          RosterStore(store, "Asia/Shanghai").get, clock=clock)
        made = books.create(by="zhiban", from_ms=TS - 3_600_000, to_ms=TS)
        books.sign(made["id"], by="zhiban")
        assert books.accept(made["id"], by="jieban")["state"] == "accepted"
        assert books.get(made["id"])["intact"] is True  # type: ignore[index]

        tracks = Tracks(client, prefix, "Asia/Shanghai", keep_days=30)
        fixes = [Fix(TS + i * 5_000, 36.78, 119.96 + i * 1e-4) for i in range(50)]
        assert tracks.write("worker", "W1", fixes) == 50
        whole = tracks.read("worker", "W1", TS, TS + 86_399_999)
        assert tracks.compact_step("2026-11-22")[1] == 1
        assert tracks.read("worker", "W1", TS, TS + 86_399_999) == whole

        # the input streams' upkeep (ingest runs it every few seconds): pipelines of
        # XINFO/XPENDING/XTRIM over all kinds, XAUTOCLAIM, the consumer-forgetting script
        streams = StreamInput(client, prefix, KINDS, "test-reader")
        streams.ensure_groups()
        client.xadd(f"{prefix}in:worker", {"m": "{}"})
        read = streams.read(10)
        assert len(read) == 1 and streams.ack(read) == 1
        assert streams.trim() == 1 and streams.claim(10) == []
        assert streams.forget_consumers() == 0

        user, password = make_user(client, "commander", prefix=prefix)
        auth = Auth(client, prefix, Settings())
        assert auth.login(user, "wrong-password", "10.0.0.9") is None
        assert auth.login(user, password, "10.0.0.9") is not None
    finally:
        client.close()

    settings = dataclasses.replace(Settings(), redis_url=cluster.url, prefix=prefix,
                                   ws_port=free_port())
    stop = threading.Event()
    ingests = [Ingest(settings, cluster.url) for _ in range(2)]
    threads = [threading.Thread(target=i.run, args=(stop,), daemon=True) for i in ingests]
    for thread in threads:
        thread.start()
    c = City(settings, open_redis(cluster.url, decode_responses=True), Relay(settings, ""))
    try:
        deadline = time.monotonic() + 15
        while not (c.client.exists(f"{prefix}ingest:hb")
                   and c.client.exists(f"{prefix}ingest:standby")):
            assert time.monotonic() < deadline, "no active and standby ingest"
            time.sleep(0.05)
        base = int(c.client.get(f"{prefix}seq") or 0)
        c.client.xadd(f"{prefix}in:event", {"m": json.dumps(
            {"id": "ev-stream", "type": "dispute", "severity": 4, "lon": 119.96,
             "lat": 36.78, "ts": TS})})
        c.publish("event", {"id": "ev-pub", "type": "dispute", "severity": 4, "lon": 119.96,
                            "lat": 36.78, "ts": TS})
        c.wait_seq(base + 2)
        assert c.client.hexists(f"{prefix}state:event", "ev-stream")
        assert c.client.hexists(f"{prefix}state:event", "ev-pub")
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        c.client.close()


def test_clu007_a_city_follows_its_slot_to_another_master(cluster: LoopbackCluster) -> None:
    """Resharding under a running city: its slot moves (with its keys) to another master.
    The ingest's apply connection is pinned to the old master, so its next batch meets MOVED:
    it reconnects as after an outage and the standby replays its ring; the relay, told its
    shard channel moved, subscribes on the new master and fills from the log. Nothing is
    dead-lettered, nothing missing on the wall, and the web API follows."""
    from app import create_app

    tag = "reshard"
    slot = key_slot(tag.encode())
    with city(cluster.url, tag, ingests=2) as c:
        deadline = time.monotonic() + 15
        while not c.client.exists(f"{c.prefix}ingest:standby"):
            assert time.monotonic() < deadline, "no standby ingest"
            time.sleep(0.05)
        token = session_token(c.client, prefix=c.prefix)
        with c.wall(token) as wall:
            frames(wall, lambda g: any(f["type"] == "snapshot" for f in g))
            for i in range(5):
                c.publish("event", {"id": f"before-{i}", "type": "dispute", "severity": 4,
                                    "lon": 119.96, "lat": 36.78, "ts": TS + i})
            frames(wall, lambda g: {f"before-{i}" for i in range(5)} <= delta_ids(g, "event"))
            old = cluster.owner(slot)
            new = next(p for p in cluster.ports if p != old)
            cluster.move_slot(slot, new)
            for i in range(5):
                c.publish("event", {"id": f"after-{i}", "type": "dispute", "severity": 4,
                                    "lon": 119.96, "lat": 36.78, "ts": TS + 10 + i})
            frames(wall, lambda g: {f"after-{i}" for i in range(5)} <= delta_ids(g, "event"),
                   timeout=20)
        assert int(c.client.get(f"{c.prefix}deadletter:count") or 0) == 0
        moved = cluster.node(new, decode_responses=True)
        assert moved.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) > 10
        assert moved.hlen(f"{c.prefix}state:event") == 10
        moved.close()
        web = create_app(c.settings).server.test_client()
        sign_in(web, c.client, "leader", prefix=c.prefix)
        assert web.get("/api/stats").status_code == 200


def test_clu008_no_script_is_called_without_a_key() -> None:
    """A script called with no key runs on a random node of a cluster, where the prefix's
    keys are not: every call names at least one key of its prefix (Store.anchor, `Pseq`)."""
    offenders = []
    for folder in ("dashboard", "feeds", "callbacks"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for needle in ("keys=[]", "keys=()", '"EVAL", APPLY_LUA, 0'):
                if needle in text:
                    offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert not offenders, offenders
