"""The simulator's clock: one heap of due reports, drained tick by tick into Redis.

Simulated time `s` runs at `rate` × wall time, so every interval, the event arrival rate
and the field's answers to dispatches speed up together (a fast-forward): messages per
second scale with `rate`. Everything a message says is a function of the seed, its due time
and the dispatches received, never of when a tick happened to run, so the same seed
publishes the same sequence; only `ts` (and the run tag in event ids) follow the wall clock.

The run loop also listens on `cc:dispatch`: tasks given to our units are played by
`feeds.sim.field` (feedback on `cc:feedback`, the units travel and work).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import logging
import math
import random
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from dashboard.backoff import RECONNECT_CAP_S
from dashboard.config import Settings
from dashboard.connect import open_redis
from dashboard.models import category_of
from feeds.sim.field import Field, Scene
from feeds.sim.incidents import MEAN_EVENT_GAP_S, IncidentDesk
from feeds.sim.text import Text
from feeds.sim.world import (
    PATROL_MPS,
    WALK_MPS,
    Camera,
    CityLike,
    Resource,
    Worker,
    build_world,
)

log = logging.getLogger("feeds.simulator")

CST = timezone(timedelta(hours=8), "CST")
TICK_S = 0.1
MAX_LAG_S = 2.0  # behind by more than this (a stalled machine): skip ahead, never burst
BACKOFF_FIRST_S, BACKOFF_CAP_S = 0.2, RECONNECT_CAP_S  # back soon after a failover
WORKER_EVERY = (4.0, 6.0)
OFF_DUTY_EVERY = (25.0, 35.0)  # the app reports rarely in the background
VEHICLE_EVERY = (8.0, 12.0)
STATIC_EVERY = (55.0, 65.0)
CAMERA_EVERY = (240.0, 360.0)
CAMERA_OUTAGE_GAP_S = 10.0  # with 2-30 min outages, ~90 cameras (3 %) are offline at a time
SOS_GAP_S = 7200.0
_REPORTS = frozenset("wrc")  # heap codes of entity reports
# After a warm-up, first reports spread over this many sim seconds (the camera catalogue first).
_GO_LIVE_SPREAD = {"w": WORKER_EVERY[1], "r": VEHICLE_EVERY[1], "c": 3.0}
# History simulated before going live, so the wall opens with some events already waiting
# for the command center. Only events are published for it, all `reported` (the command
# center owns what follows): a long history would open on a backlog of overdue events.
WARMUP_S = 180.0
DISPATCH_DRAIN_MAX = 1000  # cc:dispatch messages taken per tick (the rest wait for the next)
ADOPT_EVERY_S = 5.0  # how often stored open tasks are checked for work sent back to us
# The path of each stream type under a video base (docs/VIDEO.md); "none" has no URL.
STREAM_PATHS = {"mjpeg": "{id}.mjpg", "image": "{id}.jpg", "hls": "{id}/index.m3u8",
                "mp4": "{id}.mp4", "webm": "{id}.webm"}


def video_bases(settings: Settings) -> list[str]:
    """URL prefixes of the demo video server as a browser here reaches it, one per port.

    `CC_SIM_VIDEO_BASE` (one base) wins. Browsers open at most six connections per
    host:port and each MJPEG tile holds one, hence several ports."""
    if settings.sim_video_base:
        return [settings.sim_video_base.rstrip("/")]
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return [f"http://{host}:{settings.sim_video_port + i}/video"
            for i in range(max(1, settings.sim_video_spread))]


def stream_url(bases: Sequence[str], cam_id: str, stream_type: str) -> str | None:
    """A camera's stream URL: the base picked by crc32 of the id, so a camera keeps its port."""
    path = STREAM_PATHS.get(stream_type)
    if path is None or not bases:
        return None
    return f"{bases[zlib.crc32(cam_id.encode()) % len(bases)]}/{path.format(id=cam_id)}"


def camera_message(c: Camera, bases: Sequence[str], ts: int | str) -> dict[str, Any]:
    """A camera's report as the feed protocol has it (its stream on one of `bases`)."""
    msg: dict[str, Any] = {
        "id": c.id, "name": c.name, "lon": round(c.lon, 6), "lat": round(c.lat, 6),
        "stream_type": c.stream_type, "stream_url": stream_url(bases, c.id, c.stream_type),
        "online": c.online, "ptz": c.ptz, "range_m": c.range_m, "ts": ts,
    }
    if c.heading is not None:  # a fixed camera: what it sees is a sector
        msg["heading"], msg["fov"] = c.heading, c.fov
    return msg


class Simulator:
    """Builds the world and turns simulated time into protocol messages."""

    def __init__(self, city: CityLike, *, prefix: str = "cc:", rate: float = 1.0, seed: int = 7,
                 video_base: str | Sequence[str] | None = None, workers: int = 2140,
                 cameras: int = 3000, wall0: float | None = None,
                 settings: Settings | None = None) -> None:
        if not rate > 0 or not math.isfinite(rate):
            raise ValueError(f"rate must be a positive number, not {rate!r}")
        self.city, self.rate = city, rate
        self.settings = settings or Settings.from_env()
        # One base, several (one per port of the demo video server), or from the settings.
        bases = [video_base] if isinstance(video_base, str) else list(
            video_base or video_bases(self.settings))
        self.video_bases = [b.rstrip("/") for b in bases]
        self.prefix = prefix
        self.channels = {k: f"{prefix}{k}"
                         for k in ("event", "worker", "resource", "camera", "feedback")}
        self.wall0 = time.time() if wall0 is None else wall0
        self.text = Text(seed)
        self.world = build_world(city, self.text, random.Random(f"{seed}:world"),
                                 workers=workers, cameras=cameras)
        # Build the city's point-in-grid index now, not in the middle of a tick (~1 s once).
        for cam in self.world.cameras[:1]:
            city.locate(cam.lon, cam.lat)
        self.rng = random.Random(f"{seed}:run")
        run_tag = datetime.fromtimestamp(self.wall0, CST).strftime("%y%m%d%H%M%S")
        self.desk = IncidentDesk(self.world, city, self.text, self.rng, self, run_tag)
        # The field draws from its own stream: dispatches (which follow the wall clock and
        # the people at the wall) do not shift the city's own sequence.
        self.field = Field(self.world, random.Random(f"{seed}:field"), self, self.settings)
        self.field.on_handled.append(self.desk.mark_handled)
        self.s = 0.0  # simulated seconds drained so far
        self._warm_until = -1.0
        self.sent: Counter[str] = Counter()
        self.warm_sent = 0  # of `sent`, the history published at go-live
        self._heap: list[tuple[float, int, str, Any, int]] = []
        self._seq = itertools.count()
        self._out: list[tuple[str, str]] = []
        # Held from reading cc:dispatch until the tick's messages are out; the autopilot
        # (same process) dispatches under it too.
        self.publishing = threading.Lock()
        self._hints: dict[str, float] = {}  # unit id → until (monotonic), see hint_engaged
        self._seed_schedule()

    # ---- hooks for the incident desk ------------------------------------------------------

    def at(self, due: float, code: str, obj: Any) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), code, obj, 0))

    def wake(self, entity: Worker | Resource | Camera, t: float) -> None:
        """Report `entity` at `t`, replacing its scheduled report (stale entries are skipped)."""
        entity.token += 1
        code = "w" if isinstance(entity, Worker) else "r" if isinstance(entity, Resource) else "c"
        heapq.heappush(self._heap, (t, next(self._seq), code, entity, entity.token))

    def emit(self, kind: str, msg: dict[str, Any]) -> None:
        self._out.append((self.channels[kind], json.dumps(msg, ensure_ascii=False,
                                                          separators=(",", ":"))))
        self.sent[kind] += 1

    def stamp(self, t: float, iso: bool) -> int | str:
        """The wall-clock `ts` of sim time `t`: ISO-8601 +08:00 or epoch milliseconds."""
        ms = int(self.wall0 * 1000 + t / self.rate * 1000)
        if not iso:
            return ms
        return datetime.fromtimestamp(ms / 1000, CST).isoformat(timespec="milliseconds")

    # ---- the clock ------------------------------------------------------------------------

    def _seed_schedule(self) -> None:
        rng = self.rng
        # First reports spread over one interval, so the load is even from the start.
        for w in self.world.workers:
            self.wake(w, rng.uniform(0, WORKER_EVERY[1]))
        for r in self.world.resources:
            self.wake(r, rng.uniform(0, (VEHICLE_EVERY if r.mobile else STATIC_EVERY)[1]))
        for c in self.world.cameras:
            self.wake(c, rng.uniform(0, 3.0))  # the platform's initial catalogue push
            if rng.random() < 0.03:
                c.online = False
                self.at(rng.uniform(60, 1800), "R", c)
        self.at(rng.expovariate(1 / MEAN_EVENT_GAP_S), "E", None)
        self.at(rng.expovariate(1 / CAMERA_OUTAGE_GAP_S), "O", None)
        self.at(rng.expovariate(1 / SOS_GAP_S), "S", None)

    def advance(self, until: float) -> list[tuple[str, str]]:
        """Run everything due up to sim time `until`; returns (channel, JSON) in due order."""
        heap = self._heap
        while heap and heap[0][0] <= until:
            t, _, code, obj, token = heapq.heappop(heap)
            if t < self._warm_until and code in _REPORTS:
                if token == obj.token:  # no positions for the past: first report at go-live
                    self.wake(obj, self._warm_until + t % _GO_LIVE_SPREAD[code])
                continue
            if code == "w":
                if token == obj.token:
                    self._worker(obj, t)
            elif code == "r":
                if token == obj.token:
                    self._resource(obj, t)
            elif code == "c":
                if token == obj.token:
                    self._camera(obj, t)
            elif code == "f":
                play, unit, stage = obj
                self.field.step(play, unit, stage, t)
            elif code == "E":
                self.desk.spawn(t)
                self.at(t + self.rng.expovariate(1 / MEAN_EVENT_GAP_S), "E", None)
            elif code == "O":
                self._outage(t)
            elif code == "R":
                obj.online = True
                self.wake(obj, t)
            elif code == "S":
                self._sos(t)
        self.s = max(self.s, until)
        out, self._out = self._out, []
        return out

    def warm_up(self, seconds: float = WARMUP_S) -> list[tuple[str, str]]:
        """Simulate `seconds` of event history ending now; returns those events' messages.

        Workers, vehicles and cameras keep still meanwhile and report from go-live on, so
        this costs a fraction of a second. `ts` of the history lies in the past.
        """
        if self.s > 0 or seconds <= 0:
            return []
        self.wall0 = time.time() - seconds / self.rate
        self._warm_until = seconds
        try:
            return self.advance(seconds)
        finally:
            self._warm_until = -1.0

    def open_events(self) -> int:
        """Our recent events the field has not handled (a gauge; bounded)."""
        return self.desk.open

    def scene_of(self, event_id: str) -> Scene | None:
        """Where one of our recent events is, or None."""
        inc = self.desk.find(event_id)
        if inc is None:
            return None
        etype = inc.msg["type"]
        return Scene(inc.point, etype, category_of(etype), inc.severity, inc.handle_s)

    def scene_from_record(self, record: dict[str, Any]) -> Scene | None:
        """A scene from a stored event record (WGS-84), for events not (or no longer) ours."""
        try:
            point = (float(record["lon"]), float(record["lat"]))
            severity = int(record.get("severity") or 4)
        except (KeyError, TypeError, ValueError):
            return None
        etype = str(record.get("type") or "other")
        return Scene(point, etype, category_of(etype), severity,
                     self.desk.handle_s(etype, severity, self.field.rng))

    def dispatched(self, msg: dict[str, Any], scene: Scene | None = None) -> bool:
        """A `cc:dispatch` message arrived now (sim time `self.s`): play it if it is ours.

        `scene` is needed only for events that are not our recent ones. False when no
        assignee is ours or the event cannot be placed.
        """
        scene = scene or self.scene_of(str(msg.get("event_id") or ""))
        if scene is None or not self.field.ours(msg):
            return False
        return self.field.dispatch(msg, scene, self.s) is not None

    # ---- reports --------------------------------------------------------------------------

    def _worker(self, w: Worker, t: float) -> None:
        rng, mover = self.rng, w.mover
        if w.status == "sos" and t >= w.sos_until:
            w.status = "on_duty"
            mover.stay(t, 0)
        if w.busy_with is None and w.status in ("on_duty", "off_duty") and t >= w.shift_until:
            if w.status == "on_duty":  # shift over: the phone stays where it was left
                w.status, w.shift_until = "off_duty", t + rng.expovariate(1 / 1800)
                mover.stay(t, math.inf)
            else:
                w.status, w.shift_until = "on_duty", t + rng.expovariate(1 / 21600)
                mover.stay(t, 0)
        if w.status == "on_duty" and w.busy_with is None and t >= mover.until:
            # 走访: walk to another spot of the grid, then stay a while (a household visit).
            to = self.city.random_point_in(w.grid, rng)
            mover.go(t, to, WALK_MPS * rng.uniform(0.8, 1.2), rng.uniform(30, 600))
        drain = 2.0 if w.status == "off_duty" else 7.0  # % per hour with GPS on
        w.battery -= drain * (t - w.battery_t) / 3600
        w.battery_t = t
        if w.battery < 12:
            w.battery = rng.uniform(90, 100)  # swapped to the power bank (充电宝)
        lon, lat = mover.at(t)
        moving = mover.moving(t)
        msg: dict[str, Any] = {
            "id": w.id, "name": w.name, "grid_id": w.grid, "status": w.status, "phone": w.phone,
            "lon": round(lon, 6), "lat": round(lat, 6),
            "speed": round(mover.speed, 1) if moving else 0.0,
            "heading": round(mover.heading_at(t)) % 360, "battery": int(w.battery),
            "ts": self.stamp(t, iso=False),
        }
        if w.busy_with is not None:
            del msg["status"]  # engaged: the command center sets the status
        self.emit("worker", msg)
        every = OFF_DUTY_EVERY if w.status == "off_duty" else WORKER_EVERY
        self.wake(w, t + rng.uniform(*every))

    def _resource(self, r: Resource, t: float) -> None:
        rng, mover = self.rng, r.mover
        if r.status == "available" and r.mission is None and r.patrols and t >= mover.until:
            to = self.city.random_point_in(r.area, rng)
            mover.go(t, to, PATROL_MPS * rng.uniform(0.7, 1.2), rng.uniform(60, 900))
        lon, lat = mover.at(t)
        msg: dict[str, Any] = {
            "id": r.id, "kind": r.kind, "name": r.name, "unit": r.unit, "status": r.status,
            "lon": round(lon, 6), "lat": round(lat, 6), "ts": self.stamp(t, iso=True),
        }
        if r.plate:
            msg["plate"] = r.plate
        if r.capacity is not None:
            msg["capacity"] = r.capacity
        if r.mobile:
            msg["speed"] = round(mover.speed, 1) if mover.moving(t) else 0.0
            msg["heading"] = round(mover.heading_at(t)) % 360
        if r.mission:
            msg["event_id"] = r.mission
            del msg["status"]  # engaged: the command center sets the status
        self.emit("resource", msg)
        self.wake(r, t + rng.uniform(*(VEHICLE_EVERY if r.mobile else STATIC_EVERY)))

    def _camera(self, c: Camera, t: float) -> None:
        self.emit("camera", camera_message(c, self.video_bases, self.stamp(t, iso=True)))
        self.wake(c, t + self.rng.uniform(*CAMERA_EVERY))

    def _outage(self, t: float) -> None:
        rng = self.rng
        cam = rng.choice(self.world.cameras)
        if cam.online:
            cam.online = False
            self.wake(cam, t)
            self.at(t + rng.uniform(120, 1800), "R", cam)
        self.at(t + rng.expovariate(1 / CAMERA_OUTAGE_GAP_S), "O", None)

    def _sos(self, t: float) -> None:
        rng = self.rng
        for _ in range(10):
            w = rng.choice(self.world.workers)
            if w.status == "on_duty" and w.busy_with is None:
                w.status, w.sos_until = "sos", t + rng.uniform(180, 360)
                w.mover.stay(t, math.inf)
                self.wake(w, t)
                break
        self.at(t + rng.expovariate(1 / SOS_GAP_S), "S", None)

    # ---- the loop -------------------------------------------------------------------------

    def run(self, redis_url: str, stop: threading.Event, duration: float | None = None,
            warmup: float = WARMUP_S) -> None:
        """Publish in real time until `stop` is set or `duration` wall seconds have passed.

        A fresh simulator first publishes `warmup` simulated seconds of event history.
        """
        # No client-side retries: a dead server must fail fast so our own backoff (which
        # also pauses simulated time) and the stop event stay in charge.
        client = open_redis(redis_url, socket_connect_timeout=0.5, socket_timeout=2.0,
                            retry=Retry(NoBackoff(), 0))
        inbox = Dispatches(client, f"{self.prefix}dispatch")
        pending = self.warm_up(warmup)
        self.warm_sent = len(pending)
        if pending:
            log.info("simulator: %d event messages of %.0f min history first", len(pending),
                     warmup / 60)
        mono0 = time.monotonic() - self.s / self.rate
        self.wall0 = time.time() - self.s / self.rate  # ts line up with now from here on
        end = time.monotonic() + duration if duration is not None else math.inf
        failures, next_tick, fresh = 0, time.monotonic(), bool(pending)
        next_adopt = next_tick
        next_log = next_tick + 60
        logged = (next_tick, sum(self.sent.values()))
        try:
            while not stop.is_set() and time.monotonic() < end:
                now = time.monotonic()
                if not pending:
                    target = (now - mono0) * self.rate
                    if target - self.s > MAX_LAG_S * self.rate:  # stalled: skip, don't burst
                        skip = (target - self.s) / self.rate - TICK_S
                        mono0 += skip
                        self.wall0 += skip
                        target = (now - mono0) * self.rate
                    pending = self.advance(target)
                    fresh = True
                # Dispatches are read after the tick's fixes were made and before they go
                # out, under the lock the in-process autopilot dispatches under: a unit the
                # command center just marked busy must not be shown on duty again by a fix
                # computed a moment before we knew.
                try:
                    with self.publishing:
                        if fresh:
                            fresh = False
                            try:
                                engaged = self._take_dispatches(client, inbox)
                                if now >= next_adopt:
                                    next_adopt = now + ADOPT_EVERY_S
                                    engaged |= self._adopt_open_tasks(client)
                            except (redis.RedisError, OSError):
                                engaged = set()
                                inbox.close()  # resubscribes next tick; publishing backs off
                            if self._hints:
                                engaged |= self._live_hints()
                            if engaged:
                                pending = self._without_status(pending, engaged)
                        if pending:
                            pipe = client.pipeline(transaction=False)
                            for channel, payload in pending:
                                pipe.execute_command("PUBLISH", channel, payload)
                            pipe.execute()
                    if failures:
                        log.info("simulator: Redis is back after %d failed attempts", failures)
                    pending, failures = [], 0
                except (redis.RedisError, OSError) as exc:
                    wait = min(BACKOFF_CAP_S, BACKOFF_FIRST_S * 2**failures)
                    failures += 1
                    (log.warning if failures == 1 else log.debug)(
                        "simulator: Redis unavailable (%s); retrying in %.1fs", exc, wait)
                    stop.wait(wait)
                    # The city holds its breath while Redis is away: no backlog burst later.
                    paused = time.monotonic() - now
                    mono0 += paused
                    self.wall0 += paused
                    continue
                if now >= next_log:
                    total = sum(self.sent.values())
                    log.info("simulator: %.0f msg/s, %d of our events not yet handled, "
                             "%d tasks in the field", (total - logged[1])
                             / max(1e-9, now - logged[0]), self.desk.open,
                             len(self.field.plays))
                    logged, next_log = (now, total), now + 60
                next_tick = max(next_tick + TICK_S, time.monotonic() - TICK_S)
                stop.wait(max(0.0, next_tick - time.monotonic()))
        finally:
            inbox.close()
            client.close()

    def _take_dispatches(self, client: redis.Redis, inbox: Dispatches) -> set[str]:
        """Play the tasks dispatched since the last tick; the ids of the units engaged.
        Events that are not our recent ones are placed from the stored record."""
        engaged: set[str] = set()
        for msg in inbox.drain(DISPATCH_DRAIN_MAX):
            engaged |= self._play(client, msg)
        return engaged

    def _adopt_open_tasks(self, client: redis.Redis) -> set[str]:
        """Take up stored open tasks of our units that nobody plays: sent back for rework
        after a failed check (no cc:dispatch says so), or dispatched while we were not
        listening (a restart: pub/sub keeps nothing)."""
        ids = list(client.smembers(f"{self.prefix}tasks:open"))
        engaged: set[str] = set()
        if not ids:
            return engaged
        for raw in client.hmget(f"{self.prefix}state:task", ids):
            task = _json_object(raw) if raw else None
            stage = self.field.to_resume(task) if task else ""
            if not task or not stage:
                continue
            todo = [a for a in task.get("assignees") or ()
                    if isinstance(a, dict) and a.get("stage") != "handled"]
            msg = {"task_id": task.get("id"), "event_id": task.get("event_id"),
                   "assignees": todo}
            engaged |= self._play(client, msg, resumed=stage)
        return engaged

    def _play(self, client: redis.Redis, msg: dict[str, Any], resumed: str = "") -> set[str]:
        """Play one task if it is ours; the ids of the units it engaged."""
        units = self.field.ours(msg)
        if not units:
            return set()
        eid = str(msg.get("event_id") or "")
        scene = self.scene_of(eid)
        if scene is None:
            raw = client.hget(f"{self.prefix}state:event", eid)
            record = _json_object(raw) if raw else None
            scene = self.scene_from_record(record) if record else None
        if scene is None:
            log.warning("simulator: task %s for unknown event %s ignored",
                        msg.get("task_id"), eid)
            return set()
        if self.field.dispatch(msg, scene, self.s, resumed=resumed) is None:
            return set()
        return {u.id for u in units if u.task is not None}

    def hint_engaged(self, unit_ids: Iterable[str], seconds: float = 1.0) -> None:
        """Units just dispatched in this process (call it holding `publishing`): their
        fixes go out without status even before the cc:dispatch message is read."""
        until = time.monotonic() + seconds
        for unit_id in unit_ids:
            self._hints[unit_id] = until

    def _live_hints(self) -> set[str]:
        now = time.monotonic()
        for unit_id in [u for u, until in self._hints.items() if until < now]:
            del self._hints[unit_id]
        return set(self._hints)

    def _without_status(self, pending: list[tuple[str, str]],
                        ids: set[str]) -> list[tuple[str, str]]:
        """`pending` with `status` dropped from the fixes of the units `ids`."""
        units = (self.channels["worker"], self.channels["resource"])
        out = []
        for channel, payload in pending:
            # Our fixes start with the id ('{"id":"W00001",…'): no parse for the others.
            if channel in units and payload.startswith('{"id":"') \
                    and payload[7:payload.find('"', 7)] in ids:
                msg = json.loads(payload)
                msg.pop("status", None)
                payload = json.dumps(msg, ensure_ascii=False, separators=(",", ":"))
            out.append((channel, payload))
        return out


class Dispatches:
    """`cc:dispatch` as the run loop reads it: without blocking, resubscribing after an
    outage (pub/sub is at-most-once: what was published meanwhile is gone)."""

    def __init__(self, client: redis.Redis, channel: str) -> None:
        self.client, self.channel = client, channel
        self.pubsub: Any = None

    def drain(self, limit: int) -> list[dict[str, Any]]:
        if self.pubsub is None:
            self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            self.pubsub.subscribe(self.channel)
        out: list[dict[str, Any]] = []
        while len(out) < limit:
            msg = self.pubsub.get_message(timeout=0.0)
            if msg is None:
                break
            if msg.get("type") == "message":
                data = _json_object(msg["data"])
                if data is not None:
                    out.append(data)
        return out

    def close(self) -> None:
        if self.pubsub is not None:
            with contextlib.suppress(redis.RedisError, OSError):
                self.pubsub.close()
            self.pubsub = None


def _json_object(raw: bytes | str) -> dict[str, Any] | None:
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        return None
    return data if isinstance(data, dict) else None
