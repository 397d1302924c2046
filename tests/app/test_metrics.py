"""`/metrics` (issue 15 item 6): Prometheus text from every process's figures in Redis, read
through real ingest, relay and watch threads on the test Valkey; who may read it."""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.serving import make_server

from dashboard.config import Settings
from dashboard.ops.metrics import Family, render
from dashboard.store import Store
from feeds.fanout import Client, Fanout
from feeds.ingest import Ingest
from feeds.redis_server import free_port
from feeds.relay_metrics import RelayMetrics

from ..conftest import Stack, running_stack
from ..feeds.test_ingest import an_event, wait_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(http: Any, **kwargs: Any) -> tuple[Samples, dict[str, str]]:
    """GET /metrics, parsed by Prometheus' own client: (name, labels) → value, and each
    family's type."""
    res = http.get("/metrics", **kwargs)
    assert res.status_code == 200, res.get_data(as_text=True)
    assert res.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(res.get_data(as_text=True))


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The one sample of `name` whose labels include `labels` (None: no such sample)."""
    found = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def labels_of(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(ls) for (n, ls), _ in samples.items() if n == name]


def test_metrics001_ingest_rate_and_rejects_by_reason(stack: Stack, r: redis.Redis) -> None:
    http = stack.app.server.test_client()
    for k in range(20):
        stack.publish("event", an_event(id=f"ev-{k}", ts=an_event()["ts"] + k))
    stack.publish("event", "{not json")
    stack.publish("event", an_event(id="ev-bad", severity=9))
    stack.publish("worker", "[]")
    stack.wait_seq(20)
    wait_for(lambda: int(r.get("cc:deadletter:count") or 0) == 3)
    process = stack.ingest.instance
    # the rate is the last second's: catch the heartbeat that saw the 20
    samples, types = wait_for(lambda: (got := scrape(http)) and value(
        got[0], "cc_ingest_messages_per_second", process=process) and got, timeout=5)
    assert value(samples, "cc_ingest_messages_per_second", process=process) > 0
    assert types["cc_ingest_messages_per_second"] == "gauge"
    samples, types = wait_for(lambda: (got := scrape(http)) and value(
        got[0], "cc_ingest_accepted_total", process=process) == 20 and got)
    assert types["cc_ingest_accepted"] == "counter"
    assert value(samples, "cc_ingest_rejected_total", process=process) == 3
    reasons = {d["reason"]: value(samples, "cc_ingest_rejects_total", **d)
               for d in labels_of(samples, "cc_ingest_rejects_total")}
    assert reasons == {k: float(v) for k, v in r.hgetall("cc:deadletter:reasons").items()}
    assert reasons["not_json"] == 1 and sum(reasons.values()) == 3
    assert value(samples, "cc_up", role="ingest", process=process) == 1
    assert value(samples, "cc_log_seq") >= 20
    age = value(samples, "cc_ingest_last_message_age_seconds", process=process)
    assert age is not None and 0 <= age < 10
    # Redis latency, measured by the scraped worker and by ingest (its heartbeat's round trip)
    assert value(samples, "cc_redis_up") == 1
    assert 0 < value(samples, "cc_redis_ping_seconds") < 1
    assert 0 < value(samples, "cc_process_redis_rtt_seconds", role="ingest",
                     process=process) < 1
    # the subscribers: ingest's channels and the relay's cc:ui, nothing left unread
    assert value(samples, "cc_redis_pubsub_clients") >= 2
    assert 0 <= value(samples, "cc_redis_pubsub_backlog_max_bytes") <= value(
        samples, "cc_redis_pubsub_backlog_bytes")


def test_metrics002_input_stream_lag(stack: Stack, r: redis.Redis) -> None:
    """Entries XADDed to an input stream are read at once: lag and pending return to 0."""
    http = stack.app.server.test_client()
    r.xadd("cc:in:event", {"m": json.dumps(an_event(id="ev-s"))})
    stack.wait_seq(1)
    samples, _ = wait_for(lambda: (got := scrape(http)) and value(
        got[0], "cc_ingest_input_pending_entries", kind="event") == 0 and got)
    assert value(samples, "cc_ingest_input_lag_entries", kind="event", group="ingest") == 0


def test_metrics003_relay_clients_and_queues(stack: Stack) -> None:
    http = stack.app.server.test_client()
    with stack.connect() as ws, stack.connect("?kinds=alert") as ws2:
        for sock in (ws, ws2):
            assert '"snapshot"' in sock.recv(timeout=5)
        process = stack.relay.metrics.publisher.process
        samples, _ = wait_for(lambda: (got := scrape(http)) and value(
            got[0], "cc_relay_clients", process=process) == 2 and got, timeout=5)
        assert value(samples, "cc_up", role="relay", process=process) == 1
        for name in ("cc_relay_queued_frames", "cc_relay_queue_max_frames",
                     "cc_relay_queue_oldest_seconds", "cc_relay_clients_behind",
                     "cc_relay_resyncs_total", "cc_relay_lag_entries",
                     "cc_relay_socket_buffer_bytes", "cc_relay_socket_buffer_max_bytes"):
            assert value(samples, name, process=process) is not None, name
        assert 0 <= value(samples, "cc_process_redis_rtt_seconds", role="relay",
                          process=process) < 1
    samples, _ = wait_for(lambda: (got := scrape(http)) and value(
        got[0], "cc_relay_clients", process=process) == 0 and got, timeout=5)


def test_metrics004_two_relays_each_labelled(redis_url: str, r: redis.Redis) -> None:
    """Relays share no memory: each publishes its own figures; one gone drops out."""
    store = Store(r, "cc:")
    a, b = RelayMetrics("host:1:a"), RelayMetrics("host:2:b")
    a.publish(store, a.figures(Fanout()))
    b.publish(store, b.figures(Fanout()))
    http = _app(redis_url).server.test_client()
    samples, _ = scrape(http)
    assert {d["process"] for d in labels_of(samples, "cc_relay_clients")} == {"host:1:a",
                                                                            "host:2:b"}
    r.delete("cc:metrics:relay:host:2:b")  # its TTL ran out
    samples, _ = scrape(http)
    assert [d["process"] for d in labels_of(samples, "cc_relay_clients")] == ["host:1:a"]


def test_metrics005_watch_lag(redis_url: str) -> None:
    with running_stack(redis_url, watch=True) as live:
        http = live.app.server.test_client()
        for k in range(5):
            live.publish("event", an_event(id=f"ev-{k}"))
        live.wait_seq(5)
        # level II events raise alerts, which the log carries too: the cursor meets the seq
        samples, types = wait_for(lambda: (got := scrape(http)) and value(
            got[0], "cc_watch_cursor") == value(got[0], "cc_log_seq") >= 5 and got, timeout=5)
        assert value(samples, "cc_watch_lag_entries") == 0
        assert types["cc_watch_lag_entries"] == "gauge"
        assert value(samples, "cc_watch_processed_total") >= 5
        assert value(samples, "cc_up", role="watch") == 1
        assert 0 < value(samples, "cc_process_redis_rtt_seconds", role="watch") < 1
    # a watch behind the log: its heartbeat's lag is what /metrics says
    live.client.hset("cc:watch:hb", mapping={"lag": 42})
    samples, _ = scrape(_app(redis_url).server.test_client())
    assert value(samples, "cc_watch_lag_entries") == 42


def _app(redis_url: str, **overrides: Any) -> Any:
    from app import create_app

    return create_app(dataclasses.replace(Settings(), redis_url=redis_url, **overrides))


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """The app on a real HTTP server (a thread), as a worker would serve it: the figures of a
    request are written once its response is closed, which only a real server does."""
    server = make_server("127.0.0.1", free_port(), app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def get(url: str | urllib.request.Request) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as res:
            return res.status, res.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def parse(text: str) -> tuple[Samples, dict[str, str]]:
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, types


def test_metrics006_request_latency_by_route(redis_url: str) -> None:
    """Two web workers (two apps, two servers) over one Redis: the histogram holds the
    requests both answered, by route, never by path."""
    route = {"method": "GET", "route": "/api/health"}
    with serving(_app(redis_url)) as one, serving(_app(redis_url)) as two:
        for _ in range(3):
            assert get(one + "/api/health")[0] in (200, 503)
        assert get(two + "/api/health")[0] in (200, 503)
        assert get(one + "/api/events/ev-1")[0] == 401  # no session: a route all the same
        brew = urllib.request.Request(one + "/api/health", method="BREW")  # an odd method
        assert get(brew)[0] >= 400
        assert get(two + "/api/events/ev-2")[0] == 401
        # the figures follow each response by a moment (written once it is sent)
        samples, types = wait_for(lambda: (got := parse(get(one + "/metrics")[1])) and value(
            got[0], "cc_http_request_duration_seconds_count", **route) == 4 and value(
            got[0], "cc_http_requests_total", route="/api/events/<event_id>") == 2 and sum(
            value(got[0], "cc_http_requests_total", **d)
            for d in labels_of(got[0], "cc_http_requests_total")
            if d["method"] == "OTHER") == 1 and got)
    assert types["cc_http_request_duration_seconds"] == "histogram"
    assert value(samples, "cc_http_request_duration_seconds_bucket", le="+Inf", **route) == 4
    assert 0 < value(samples, "cc_http_request_duration_seconds_sum", **route) < 20
    buckets = sorted((float(d["le"]), value(samples, "cc_http_request_duration_seconds_bucket",
                                            **d))
                     for d in labels_of(samples, "cc_http_request_duration_seconds_bucket")
                     if d["route"] == "/api/health")
    assert [c for _, c in buckets] == sorted(c for _, c in buckets)  # cumulative
    assert math.isinf(buckets[-1][0]) and len(buckets) == 12
    codes = {d["code"] for d in labels_of(samples, "cc_http_requests_total")
             if d["route"] == "/api/health"}
    assert codes and codes <= {"200", "503"}
    assert value(samples, "cc_http_requests_total", route="/api/events/<event_id>",
                 code="401") == 2
    # an invented method is one label value, whatever the method: it cannot grow the hash
    assert sum(value(samples, "cc_http_requests_total", **d)
               for d in labels_of(samples, "cc_http_requests_total")
               if d["method"] == "OTHER") == 1
    assert not [d for d in labels_of(samples, "cc_http_requests_total") if d["method"] == "BREW"]
    # the ids in the paths are no label: one series per route, whatever the ids
    assert not [d for d in labels_of(samples, "cc_http_requests_total")
                if "ev-" in d["route"]]


def test_metrics007_refused_without_token_or_loopback(redis_url: str) -> None:
    http = _app(redis_url).server.test_client()
    far = {"REMOTE_ADDR": "10.1.2.3"}
    res = http.get("/metrics", environ_base=far)
    assert res.status_code == 403
    assert res.get_json() == {"error": res.get_json()["error"], "code": "forbidden",
                              "status": 403}
    # through a proxy on this host that we were not told to trust: not local
    res = http.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert res.status_code == 403 and res.get_json()["code"] == "forbidden"
    assert http.get("/metrics").status_code == 200  # loopback, no proxy
    assert http.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200

    token = "s3cret-metrics-token"
    http = _app(redis_url, metrics_token=token).server.test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
        res = http.get("/metrics", headers=headers)  # loopback is not enough with a token
        assert res.status_code == 401, headers
        body = res.get_json()
        assert body["code"] == "unauthenticated" and body["status"] == 401
        assert res.headers["WWW-Authenticate"].startswith("Bearer")
    res = http.get("/metrics", headers={"Authorization": f"Bearer {token}"},
                   environ_base=far)
    assert res.status_code == 200
    samples, _ = scrape(http, headers={"Authorization": f"Bearer {token}"})
    assert value(samples, "cc_redis_up") == 1
    assert token not in repr(Settings(metrics_token=token))


def test_metrics008_redis_down_is_a_figure_not_an_error(redis_url: str) -> None:
    http = _app("redis://127.0.0.1:1/0").server.test_client()  # nothing listens there
    samples, _ = scrape(http)
    assert value(samples, "cc_redis_up") == 0


def test_metrics009_relay_figures_count_resyncs_of_walls_that_left() -> None:
    """The relay's figures from its fan-out (real clients, no sockets): queue depths, the
    oldest frame's wait, walls behind, and a resync total that never goes down."""
    fan = Fanout()
    a, b = Client(None, 100, 2.0), Client(None, 100, 2.0)
    fan.clients.update({a, b})
    for seq in range(3):
        a.offer(seq, f"frame {seq}", now=10.0)
    b.mark_resync()
    b.resyncs = 2
    fan.last_seq = 41
    metrics = RelayMetrics("host:1:x")
    figures = metrics.figures(fan, now=11.5)
    assert figures == {"clients": 2, "queued_frames": 3, "queue_max_frames": 3,
                       "queue_oldest_seconds": 1.5, "clients_behind": 1,
                       "socket_buffer_bytes": 0, "socket_buffer_max_bytes": 0,
                       "resyncs_total": 2, "last_seq": 41}
    fan.clients.discard(b)  # the wall that was resynced twice leaves
    a.resyncs = 1
    assert metrics.figures(fan, now=12.0)["resyncs_total"] == 3


def test_metrics010_the_text_format_escapes_what_it_must() -> None:
    """Label values with quotes, backslashes and newlines, odd numbers: still Prometheus'."""
    family = Family("cc_test_total", "counter", 'help with \\ and\nnewline')
    family.add(1, route='/a"b\\c\nd')
    family.add(float("nan"), route="nan")
    gauge = Family("cc_test_ratio", "gauge", "a float")
    gauge.add(0.125)
    gauge.add(float("inf"), kind="inf")
    samples, types = parse(render([family, gauge]))
    assert types == {"cc_test": "counter", "cc_test_ratio": "gauge"}
    assert value(samples, "cc_test_total", route='/a"b\\c\nd') == 1
    assert math.isnan(value(samples, "cc_test_total", route="nan"))
    assert value(samples, "cc_test_ratio", kind="inf") == math.inf
    assert samples[("cc_test_ratio", frozenset())] == 0.125


def test_metrics011_active_and_standby_ingest_each_labelled(stack: Stack) -> None:
    """Two ingests: the one applying and the one standing by, each under its own label."""
    standby = Ingest(stack.settings, stack.settings.redis_url or "")
    stop = threading.Event()
    thread = threading.Thread(target=standby.run, args=(stop,), daemon=True)
    thread.start()
    try:
        http = stack.app.server.test_client()
        # a standby writes its heartbeat once it has been subscribed a few seconds (YOUNG_S)
        samples, _ = wait_for(lambda: (got := scrape(http)) and value(
            got[0], "cc_up", role="ingest_standby", process=standby.instance) == 1 and got,
            timeout=15)
        assert value(samples, "cc_up", role="ingest", process=stack.ingest.instance) == 1
        assert value(samples, "cc_ingest_standby_ring_messages",
                     process=standby.instance) is not None
        assert standby.instance != stack.ingest.instance
    finally:
        stop.set()
        thread.join(5)
