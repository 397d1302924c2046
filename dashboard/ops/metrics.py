"""The stack's figures for Prometheus, free of any web framework: what the processes publish to
Redis, and the text exposition `GET /metrics` renders from it (docs/OPERATIONS.md, "Metrics").

The processes share no memory (several web workers, several relays, two ingests), so every
figure lives in Redis and whichever web worker is scraped reads them all:

- ingest and watch: their heartbeats (`Pingest:hb`, `Pingest:standby`, `Pwatch:hb`), already
  written every second; rejects by reason: `Pdeadletter:reasons`, counted with each letter;
- each relay: its own hash `Pmetrics:relay:<process>` (TTL), found through the sorted set
  `Pmetrics:instances` (score: when it last wrote), so two relays never overwrite each other;
- request latency: every web worker adds each request to counters per route and bucket in
  `Pmetrics:http` (one pipelined round trip after the response is sent), so the histogram is
  the sum over all workers and survives a worker's restart;
- Redis latency: the scraped worker times a PING; each relay times its own metrics write.

The label naming a process is `process`, not `instance`: Prometheus sets `instance` to the
scrape target itself, and a scraped `instance` label would be renamed `exported_instance`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import redis

from dashboard.connect import home_node
from dashboard.models import KINDS
from dashboard.ops.health import alive
from dashboard.store import Store

log = logging.getLogger("cc.metrics")

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
INSTANCE_TTL_S: Final = 15  # as the heartbeats: a process gone this long drops out
# Request latency buckets (seconds): an API call is milliseconds, the cockpit's figures and an
# export run to seconds.
HTTP_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HTTP_KEY: Final = "metrics:http"
INDEX_KEY: Final = "metrics:instances"
SEP: Final = "|"  # in Pmetrics:http fields; no route template holds one
BREAK_S: Final = 5.0  # after Redis failed a request's figures, record none for this long
# Labels come from the request, before any sign-in: anything outside these fixed sets is
# folded into one value, or a client inventing methods would grow Pmetrics:http without end.
METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

Labels = Mapping[str, str]


# -- the text format ------------------------------------------------------------------------


@dataclass
class Family:
    """One metric family: `# HELP`, `# TYPE` and its samples (suffix, labels, value)."""

    name: str
    kind: str  # counter, gauge or histogram
    help: str
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, suffix: str = "", **labels: str) -> None:
        self.samples.append((suffix, labels, value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def render(families: Iterable[Family]) -> str:
    """Prometheus' text exposition format 0.0.4 (what CONTENT_TYPE names)."""
    lines: list[str] = []
    for family in families:
        text = family.help.replace("\\", "\\\\").replace("\n", "\\n")
        lines.append(f"# HELP {family.name} {text}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for suffix, labels, value in family.samples:
            pairs = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in labels.items())
            lines.append(f"{family.name}{suffix}{{{pairs}}} {_number(value)}" if pairs
                         else f"{family.name}{suffix} {_number(value)}")
    return "\n".join(lines) + "\n"


# -- what the processes write ---------------------------------------------------------------


class Publisher:
    """One process's figures in its own hash `Pmetrics:<role>:<process>` with a TTL, listed in
    `Pmetrics:instances`. It also reports how long its previous write took: that process's
    view of Redis latency, at no extra round trip."""

    def __init__(self, role: str, process: str, ttl_s: int = INSTANCE_TTL_S) -> None:
        self.role = role
        self.process = process
        self.ttl_s = ttl_s
        self.rtt_s = 0.0

    def publish(self, store: Store, figures: Mapping[str, float]) -> None:
        now = int(time.time() * 1000)
        key = store.key(f"metrics:{self.role}:{self.process}")
        pipe = store.r.pipeline(transaction=False)
        pipe.hset(key, mapping={**figures, "ts": now, "redis_rtt_s": round(self.rtt_s, 6)})
        pipe.expire(key, self.ttl_s)
        pipe.zadd(store.key(INDEX_KEY), {f"{self.role}:{self.process}": now})
        started = time.perf_counter()
        pipe.execute()
        self.rtt_s = time.perf_counter() - started


def bucket_of(seconds: float) -> str:
    """The `le` of the first bucket holding `seconds` (the counters are kept per bucket and
    made cumulative when rendered: one increment a request instead of one per bucket)."""
    for le in HTTP_BUCKETS:
        if seconds <= le:
            return _number(le)
    return "+Inf"


class RequestRecorder:
    """Adds requests to the shared counters in `Pmetrics:http`. Redis trouble never fails a
    request: its figures are dropped, and none are attempted for BREAK_S (each attempt could
    wait out a socket timeout)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._broken_until = 0.0

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        now = time.monotonic()
        if now < self._broken_until:
            return
        method = method if method in METHODS else "OTHER"
        status = status if 100 <= status <= 599 else 0
        key = self.store.key(HTTP_KEY)
        pipe = self.store.r.pipeline(transaction=False)
        pipe.hincrby(key, SEP.join(("b", method, route, bucket_of(seconds))), 1)
        pipe.hincrbyfloat(key, SEP.join(("s", method, route, "")), seconds)
        pipe.hincrby(key, SEP.join(("c", method, route, str(status))), 1)
        try:
            pipe.execute()
        except (redis.RedisError, OSError) as exc:
            self._broken_until = now + BREAK_S
            log.warning("request figures not recorded for %gs: %s", BREAK_S, exc)


# -- what a scrape reads ----------------------------------------------------------------------


def _decoded(mapping: Mapping[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in mapping.items()}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _num(mapping: Mapping[str, str], name: str) -> float:
    try:
        return float(mapping.get(name) or 0)
    except ValueError:
        return 0.0


class Scrape:
    """The families of one scrape, by name, in the order they were first asked for."""

    def __init__(self) -> None:
        self.families: dict[str, Family] = {}

    def family(self, name: str, kind: str, help_text: str) -> Family:
        if name not in self.families:
            self.families[name] = Family(name, kind, help_text)
        return self.families[name]

    def gauge(self, name: str, help_text: str, value: float, **labels: str) -> None:
        self.family(name, "gauge", help_text).add(value, **labels)

    def counter(self, name: str, help_text: str, value: float, **labels: str) -> None:
        self.family(name, "counter", help_text).add(value, **labels)


def collect(store: Store, now_ms: int | None = None) -> list[Family]:
    """Every figure of the stack, read from Redis in a few round trips (the timed PING, two
    pipelines, INFO and CLIENT LIST). Redis unreachable: `cc_redis_up 0` and nothing else."""
    out = Scrape()
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    r = store.r
    try:
        started = time.perf_counter()
        r.ping()
        ping_s = time.perf_counter() - started
        pipe = r.pipeline(transaction=False)
        for name in ("ingest:hb", "ingest:standby", "watch:hb", "deadletter:reasons",
                     HTTP_KEY):
            pipe.hgetall(store.key(name))
        pipe.get(store.key("seq"))
        pipe.zremrangebyscore(store.key(INDEX_KEY), 0, now - INSTANCE_TTL_S * 1000)
        pipe.zrange(store.key(INDEX_KEY), 0, -1)
        ingest, standby, watch, reasons, http, seq, _, members = pipe.execute()
        members = [_text(m) for m in members]
        streams = [store.key(f"in:{kind}") for kind in KINDS]
        pipe = r.pipeline(transaction=False)
        for member in members:
            pipe.hgetall(store.key(f"metrics:{member}"))
        for stream in streams:
            pipe.xinfo_groups(stream)
        answers = pipe.execute(raise_on_error=False)
        memory = store.memory()
    except (redis.RedisError, OSError) as exc:
        out.gauge("cc_redis_up", "1 when the scraped web worker reached Redis", 0)
        log.warning("metrics: Redis unreachable: %s", exc)
        return list(out.families.values())
    seq = int(seq or 0)
    out.gauge("cc_redis_up", "1 when the scraped web worker reached Redis", 1)
    out.gauge("cc_redis_ping_seconds", "PING round trip from the scraped web worker", ping_s)
    out.gauge("cc_redis_used_memory_bytes", "Redis used_memory", memory["used_memory"])
    out.gauge("cc_redis_maxmemory_bytes", "Redis maxmemory (0: no limit)", memory["maxmemory"])
    out.gauge("cc_log_seq", "sequence number of the last change in the change log", seq)
    instances = {m: _decoded(a) for m, a in zip(members, answers[:len(members)], strict=True)
                 if isinstance(a, dict) and a}
    _clients(out, home_node(r, store.prefix))  # a cluster: the master of the city's slot
    _ingest(out, _decoded(ingest), _decoded(standby), _decoded(reasons), now)
    _input_streams(out, streams, answers[len(members):])
    _relays(out, instances, seq, now)
    _watch(out, _decoded(watch), now)
    _http(out, _decoded(http))
    return list(out.families.values())


def _clients(out: Scrape, r: Any) -> None:
    """Redis's connections, and what it holds for subscribers that have not read it yet: a
    subscriber falling behind (an ingest at its limit, a stalled relay) shows here first,
    before `client-output-buffer-limit pubsub` cuts it off. Optional: a server that refuses
    CLIENT LIST (a managed one) leaves these figures out."""
    try:
        info = r.info("clients")
        subscribers = r.client_list(_type="pubsub")
        connected = float(info.get("connected_clients", 0))
        backlog = [float(c.get("omem") or 0) for c in subscribers]
    except (redis.RedisError, TypeError, ValueError, AttributeError):
        return  # refused (a managed server): left out
    out.gauge("cc_redis_connected_clients", "connections to Redis", connected)
    out.gauge("cc_redis_pubsub_clients", "subscriber connections (ingests, relays)",
              len(subscribers))
    out.gauge("cc_redis_pubsub_backlog_bytes",
              "bytes Redis holds for subscribers that have not read them yet, all of them",
              sum(backlog))
    out.gauge("cc_redis_pubsub_backlog_max_bytes",
              "bytes Redis holds for the subscriber furthest behind", max(backlog, default=0))


def _rtt(out: Scrape, role: str, figures: Mapping[str, str], process: str) -> None:
    if "redis_rtt_s" in figures:
        out.gauge("cc_process_redis_rtt_seconds",
                  "round trip of the process's last heartbeat or metrics write to Redis",
                  _num(figures, "redis_rtt_s"), role=role, process=process)


def _up(out: Scrape, role: str, heartbeat: dict[str, str], now: int, process: str) -> None:
    """Up and heartbeat age of one process (health's rule: a heartbeat younger than 10 s)."""
    out.gauge("cc_up", "1 while the process's heartbeat is fresh (as /api/health judges)",
              1 if alive(heartbeat, now) else 0, role=role, process=process)
    out.gauge("cc_heartbeat_age_seconds", "time since the process last wrote its figures",
              max(0, now - int(_num(heartbeat, "ts"))) / 1000, role=role, process=process)


def _ingest(out: Scrape, hb: dict[str, str], standby: dict[str, str],
            reasons: dict[str, str], now: int) -> None:
    if hb:
        process = hb.get("instance", "")
        _up(out, "ingest", hb, now, process)
        _rtt(out, "ingest", hb, process)
        out.gauge("cc_ingest_messages_per_second",
                  "messages applied per second over the active ingest's last second",
                  _num(hb, "rate"), process=process)
        for name, field_name, text in (
                ("accepted", "accepted", "messages applied (stored, logged, published)"),
                ("rejected", "rejected", "messages dead-lettered by this process"),
                ("duplicates", "duplicates", "messages already stored (same ts)"),
                ("conflicts", "conflicts", "revision conflicts merged again"),
                ("takeovers", "takeovers", "times this process took the lease"),
                ("reconnects", "reconnects", "times this process reconnected to Redis"),
                ("failovers", "failovers", "Sentinel failovers this process followed")):
            out.counter(f"cc_ingest_{name}_total", text, _num(hb, field_name), process=process)
        last = _num(hb, "last_ts")
        if last:
            out.gauge("cc_ingest_last_message_age_seconds",
                      "time since the newest applied message was received",
                      max(0.0, now - last) / 1000, process=process)
    if standby:
        process = standby.get("instance", "")
        _up(out, "ingest_standby", standby, now, process)
        out.gauge("cc_ingest_standby_ring_messages",
                  "messages the standby ingest keeps to apply on takeover",
                  _num(standby, "ring"), process=process)
    family = out.family("cc_ingest_rejects_total", "counter",
                        "messages dead-lettered, by reason, by every ingest since Redis "
                        "was last emptied")
    for reason, count in sorted(reasons.items()):
        family.add(float(count or 0), reason=reason)


def _input_streams(out: Scrape, streams: list[str], answers: list[Any]) -> None:
    """Entries of the input streams not yet read (`lag`) and read but not acknowledged."""
    lag = out.family("cc_ingest_input_lag_entries", "gauge",
                     "input-stream entries the consumer group has not read yet")
    pending = out.family("cc_ingest_input_pending_entries", "gauge",
                         "input-stream entries read but not yet acknowledged (stored)")
    for stream, groups in zip(streams, answers, strict=True):
        if isinstance(groups, Exception) or not groups:  # no stream yet: nothing waits
            continue
        kind = stream.rsplit(":", 1)[-1]
        for group in groups:
            name = _text(group.get("name", ""))
            # lag is unknown (None) after entries were deleted mid-group: NaN says so
            value = group.get("lag")
            lag.add(float("nan") if value is None else float(value), kind=kind, group=name)
            pending.add(float(group.get("pending") or 0), kind=kind, group=name)


def _relays(out: Scrape, instances: dict[str, dict[str, str]], seq: int, now: int) -> None:
    for member, figures in sorted(instances.items()):
        role, _, process = member.partition(":")
        _up(out, role, figures, now, process)
        _rtt(out, role, figures, process)
        if role != "relay":
            continue
        for name, kind, text in (
                ("clients", "gauge", "open websockets"),
                ("queued_frames", "gauge", "frames waiting in the walls' queues, all walls"),
                ("queue_max_frames", "gauge", "frames waiting in the longest wall queue"),
                ("queue_oldest_seconds", "gauge", "wait of the oldest queued frame"),
                ("clients_behind", "gauge", "walls marked for a resynchronisation"),
                ("socket_buffer_bytes", "gauge",
                 "bytes written to the walls' sockets, not yet taken by the network"),
                ("socket_buffer_max_bytes", "gauge", "the same, of the wall furthest behind"),
                ("resyncs_total", "counter", "walls resynchronised with a snapshot")):
            out.family(f"cc_relay_{name}", kind, text).add(_num(figures, name), process=process)
        if "last_seq" in figures:
            out.gauge("cc_relay_lag_entries",
                      "change-log entries the relay has not yet received (log seq - relay's)",
                      max(0.0, seq - _num(figures, "last_seq")), process=process)


def _watch(out: Scrape, hb: dict[str, str], now: int) -> None:
    if not hb:
        return
    _up(out, "watch", hb, now, hb.get("instance", ""))
    _rtt(out, "watch", hb, hb.get("instance", ""))
    out.gauge("cc_watch_lag_entries", "change-log entries the watch service has not handled",
              _num(hb, "lag"))
    out.gauge("cc_watch_cursor", "the last change-log entry the watch service handled",
              _num(hb, "cursor"))
    for name, text in (("processed", "change-log entries handled"),
                       ("alerts", "alerts raised"),
                       ("errors", "entries or rounds that failed"),
                       ("skipped", "entries trimmed from the log before being seen"),
                       ("reconnects", "times the watch service reconnected to Redis")):
        out.counter(f"cc_watch_{name}_total", text, _num(hb, name))


def _http(out: Scrape, fields: dict[str, str]) -> None:
    """Rebuild the histogram (cumulative buckets, sum, count) from the per-bucket counters."""
    buckets: dict[tuple[str, str], dict[str, float]] = {}
    sums: dict[tuple[str, str], float] = {}
    codes: list[tuple[str, str, str, float]] = []
    for name, raw in fields.items():
        parts = name.split(SEP)
        if len(parts) < 4:
            continue
        kind, method, extra = parts[0], parts[1], parts[-1]
        route = SEP.join(parts[2:-1])
        value = float(raw)
        if kind == "b":
            buckets.setdefault((method, route), {})[extra] = value
        elif kind == "s":
            sums[(method, route)] = value
        elif kind == "c":
            codes.append((method, route, extra, value))
    hist = out.family("cc_http_request_duration_seconds", "histogram",
                      "time to answer a request, by route (Flask's rule) and method, "
                      "all web workers")
    for (method, route), counts in sorted(buckets.items()):
        total = 0.0
        for le in [*(_number(b) for b in HTTP_BUCKETS), "+Inf"]:
            total += counts.get(le, 0.0)
            hist.add(total, "_bucket", method=method, route=route, le=le)
        hist.add(sums.get((method, route), 0.0), "_sum", method=method, route=route)
        hist.add(total, "_count", method=method, route=route)
    family = out.family("cc_http_requests_total", "counter",
                        "requests answered, by route, method and status, all web workers")
    for method, route, code, value in sorted(codes):
        family.add(value, method=method, route=route, code=code)
