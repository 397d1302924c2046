"""Settings, read once from the environment."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def _keep_months(months: int) -> int:
    """The cockpit compares this year with the last: an archive kept shorter loses figures."""
    if months != 0 and months < 25:
        raise ValueError("CC_ARCHIVE_KEEP_MONTHS must be 0 (keep for ever) or at least 25")
    return months


def _history_days(days: int) -> int:
    """Beyond two years the archive (36 months kept) and the year comparison gain nothing."""
    if not 0 <= days <= 730:
        raise ValueError("CC_DEMO_HISTORY_DAYS must be 0 (none) to 730")
    return days


def _audit_days(days: int) -> int:
    """MLPS 2.0 level 3 wants six months of audit records: keeping them shorter is refused."""
    if days != 0 and days < 180:
        raise ValueError("CC_AUDIT_RETENTION_DAYS must be 0 (keep for ever) or at least 180")
    return days


def _bytes(name: str) -> int | None:
    """`4gb`, `512mb`, `100kb` or plain bytes, as Redis writes sizes; None when unset."""
    raw = (os.environ.get(name) or "").strip().lower()
    if not raw:
        return None
    for suffix, factor in (("gb", 1024**3), ("mb", 1024**2), ("kb", 1024), ("b", 1)):
        if raw.endswith(suffix):
            return int(float(raw[: -len(suffix)]) * factor)
    return int(raw)


def _positive_bytes(name: str, default: int) -> int:
    """A size as `_bytes` reads it, more than zero (a body limit of nothing refuses all)."""
    value = _bytes(name)
    if value is None:
        return default
    if value <= 0:
        raise ValueError(f"{name} must be more than 0 bytes")
    return value


def _str(name: str, default: str) -> str:
    raw = os.environ.get(name)
    return raw if raw not in (None, "") else default


# CSP keywords an operator may write without their quotes (`none`, `self`).
_CSP_KEYWORDS = {"none": "'none'", "self": "'self'"}
_CSP_SOURCE = re.compile(r"^[A-Za-z0-9*\[\]:/._%+-]+$")


def _compression(name: str) -> bool:
    value = _str(name, "off").lower()
    if value not in ("off", "deflate"):
        raise ValueError(f"{name} must be off or deflate, not {value!r}")
    return value == "deflate"


def _sources(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A CSP source list (`https://cams.example.gov http://10.0.0.5:8060`, spaces or commas);
    a `;` or a quote in it would end or bend the policy, so those are refused."""
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    out = []
    for part in filter(None, re.split(r"[\s,]+", raw)):
        part = _CSP_KEYWORDS.get(part.lower(), part)
        if part not in _CSP_KEYWORDS.values() and not _CSP_SOURCE.match(part):
            raise ValueError(f"{name}: {part!r} is not a CSP source (origin, scheme or 'self')")
        out.append(part)
    if "'none'" in out and len(out) > 1:
        raise ValueError(f"{name}: 'none' cannot be combined with other sources")
    return tuple(out)


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _str(name, default).strip().lower()
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}")
    return value


# km/h by unit kind: grid workers and volunteers walk or cycle; vehicles in city traffic.
DEFAULT_SPEEDS_KMH: dict[str, float] = {
    "worker": 6.0, "volunteer": 6.0, "patrol_car": 30.0, "police_car": 40.0,
    "law_enforcement": 30.0, "fire_engine": 40.0, "ambulance": 45.0, "rescue_team": 35.0,
    "drone": 50.0, "other": 30.0,
}


def _speeds(text: str) -> dict[str, float]:
    """`CC_SPEEDS_KMH="worker=5,fire_engine=35"` overrides some of the defaults."""
    speeds = dict(DEFAULT_SPEEDS_KMH)
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, _, value = part.partition("=")
        try:
            speeds[kind.strip()] = float(value)
        except ValueError:
            raise ValueError(f"CC_SPEEDS_KMH: bad entry {part!r}") from None
    return speeds


@dataclass(frozen=True)
class Settings:
    """Every tunable of the stack; `Settings.from_env()` is the only reader of os.environ."""

    redis_url: str | None = None
    prefix: str = "cc:"
    host: str = "127.0.0.1"
    port: int = 8050
    ws_port: int = 8765
    # The websocket URL browsers use; empty means "same host as the page, ws_port".
    ws_public_url: str = ""
    data_dir: Path = field(default_factory=lambda: ROOT / "var")
    city: str = "pingdu"
    center_name: str = "平度市社会治理指挥中心"
    center_name_en: str = "Pingdu Social Governance Command Center"
    timezone: str = "Asia/Shanghai"
    lang: str = "zh-CN"
    # Caps that keep memory flat over weeks of uptime.
    log_maxlen: int = 200_000
    deadletter_max: int = 10_000
    deadletter_raw_bytes: int = 4096  # of each rejected message kept in its dead letter
    # Ingest (issue 12): a ts further ahead of receipt than this is dead-lettered `future`;
    # a standby ingest keeps the feed's last standby_ring_s seconds, at most standby_ring_mb.
    max_future_s: int = 300
    standby_ring_s: float = 10.0
    standby_ring_mb: int = 64
    # The embedded Valkey's maxmemory: None = the city's worst case (dashboard/ops/capacity.py),
    # 0 = no limit. Health turns degraded at memory_warn_ratio of it.
    redis_maxmemory: int | None = None
    memory_warn_ratio: float = 0.85
    # Relay: a client whose oldest queued frame waited client_lag_s (or whose queue reached
    # client_queue_max frames), or whose socket buffer stayed over 1 MiB for client_lag_s or
    # passed client_buffer_max bytes, is resynchronised with a snapshot. Moves are coalesced.
    client_queue_max: int = 20_000
    client_lag_s: float = 2.0
    client_buffer_max: int = 8 * 2**20
    coalesce_s: float = 1.0
    # permessage-deflate on the walls' sockets: off, since it costs a compression per frame
    # per wall (bench/walls.py); for walls on thin links (CC_WS_COMPRESSION=deflate)
    ws_compression: bool = False
    # Websocket doors (issue 13): the page origins the relay accepts (empty: a page on the
    # relay's own host name, at CC_PORT or the relay's port); open sockets per session.
    ws_origins: tuple[str, ...] = ()
    ws_per_session: int = 8
    # HTTP (issue 15): gunicorn's gthread workers (deploy/gunicorn.conf.py), processes and
    # threads in each. A wall's requests wait on Redis far more than they compute.
    web_workers: int = 2
    web_threads: int = 8
    # Simulator speed multiplier (1 = Pingdu's normal load).
    sim_rate: float = 1.0
    # Where the simulator says its cameras stream; empty = its own demo video server below.
    sim_video_base: str = ""
    # The demo video server (feeds/sim/video.py): first port, how many ports (browsers open
    # at most 6 connections per host:port, and every MJPEG tile holds one), frames a second.
    sim_video_port: int = 8060
    sim_video_spread: int = 4
    sim_video_fps: float = 6.0
    # The video wall's tour (docs/VIDEO.md): the tiles nobody pinned and no followed event
    # fills show online cameras by area, the next ones every video_tour_s (0 = no tour).
    video_tour_s: int = 20
    # Optional intranet raster tiles: URL template and its datum (wgs84, gcj02, bd09).
    tile_url: str = ""
    tile_crs: str = "wgs84"
    # Command loop (issue 3). Sessions slide: each request extends them by session_ttl_s.
    session_ttl_s: int = 12 * 3600
    # Failed sign-ins in 15 minutes before 429: per user name and address, per address
    # (whatever the names), per user name (whatever the addresses).
    login_max_failures: int = 5
    login_max_failures_ip: int = 20
    login_max_failures_user: int = 10
    # Audit trail: entries are kept this many days (0 = for ever), trimmed by time only;
    # requests before sign-in write at most audit_anon_per_min entries a minute per address.
    audit_retention_days: int = 180
    audit_anon_per_min: int = 10
    # ETA = straight-line distance × detour_factor ÷ the kind's speed.
    detour_factor: float = 1.4
    speeds_kmh: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SPEEDS_KMH))
    near_radius_m: float = 5000.0
    # A yellow card when this share of a time limit has passed; red when all of it has.
    sla_yellow_ratio: float = 0.8
    watch_tick_s: float = 1.0
    # Demo only: the simulator's autopilot dispatches an event nobody dispatched within this
    # many seconds, and verifies/evaluates handled ones likewise (0 = never).
    sim_autopilot_s: float = 60.0
    demo_users: bool = True
    # Demo only: days of history a fresh data folder starts with (feeds/sim/history.py,
    # docs/DEMO.md), written once before the wall's URL is printed; 0 = none.
    demo_history_days: int = 90
    # … and about this many events on an ordinary weekday of it (~21 ms each to write).
    demo_history_per_day: float = 40.0
    # Cockpit (issue 5): events closed/cancelled longer than archive_age_s move to the
    # columnar archive; the watch service archives every archive_every_s, archive_batch at a
    # time (and again each tick while a backlog remains). Cached figures are recomputed at
    # most every stats_min_age_s while the data keeps changing.
    archive_age_s: int = 24 * 3600
    archive_every_s: float = 3600.0
    archive_batch: int = 1000
    # Archived months kept (the current one counts); older ones are dropped. 0 = for ever.
    archive_keep_months: int = 36
    stats_min_age_s: float = 5.0
    # Tracks (issue 5): a day of a unit's positions is kept this many days
    # (dashboard/archive/tracks.py).
    track_keep_days: int = 30
    # Replay (issue 16): the wall's history (keyframes and thinned changes, written by the
    # watch: dashboard/replay/) is kept this many days; at least 1.
    replay_days: int = 7
    # HTTP hardening (issue 13, callbacks/access/security.py). Camera streams (img, video, HLS) may
    # load from these CSP sources; empty = the demo video server's origins only.
    media_sources: tuple[str, ...] = ()
    # Who may frame the pages (CSP frame-ancestors; X-Frame-Options follows it).
    frame_ancestors: tuple[str, ...] = ("'none'",)
    max_content_length: int = 1 << 20  # bytes of a request body; more is a JSON 413
    # Reverse proxies in front of the app (0 = none): their X-Forwarded-* headers are believed.
    trusted_proxies: int = 0
    # The session cookie's Secure flag: "auto" = when the request came over HTTPS, "true" =
    # always (TLS ends at a proxy that does not say so).
    cookie_secure: str = "auto"
    # Observability (issue 15): every process logs one JSON object a line with "json"; who may
    # read /metrics: with a token, a request bearing it; without, this host only (loopback).
    log_format: str = "text"
    metrics_token: str = field(default="", repr=False)  # a secret: never in a log line

    def speed_kmh(self, kind: str) -> float:
        """Travel speed of a unit kind (`worker` or a resource kind)."""
        return self.speeds_kmh.get(kind) or self.speeds_kmh.get("other", 30.0)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            redis_url=os.environ.get("REDIS_URL") or None,
            prefix=_str("CC_PREFIX", "cc:"),
            host=_str("CC_HOST", "127.0.0.1"),
            port=_int("CC_PORT", 8050),
            ws_port=_int("CC_WS_PORT", 8765),
            ws_public_url=_str("CC_WS_PUBLIC_URL", ""),
            data_dir=Path(_str("CC_DATA_DIR", str(ROOT / "var"))),
            city=_str("CC_CITY", "pingdu"),
            center_name=_str("CC_CENTER_NAME", "平度市社会治理指挥中心"),
            center_name_en=_str("CC_CENTER_NAME_EN", "Pingdu Social Governance Command Center"),
            timezone=_str("CC_TZ", "Asia/Shanghai"),
            lang=_str("CC_LANG", "zh-CN"),
            log_maxlen=_int("CC_LOG_MAXLEN", 200_000),
            deadletter_max=_int("CC_DEADLETTER_MAX", 10_000),
            deadletter_raw_bytes=_int("CC_DEADLETTER_RAW_BYTES", 4096),
            max_future_s=_int("CC_MAX_FUTURE_S", 300),
            standby_ring_s=_float("CC_STANDBY_RING_S", 10.0),
            standby_ring_mb=_int("CC_STANDBY_RING_MB", 64),
            redis_maxmemory=_bytes("CC_REDIS_MAXMEMORY"),
            memory_warn_ratio=_float("CC_MEMORY_WARN_RATIO", 0.85),
            client_queue_max=_int("CC_CLIENT_QUEUE_MAX", 20_000),
            client_lag_s=_float("CC_CLIENT_LAG_S", 2.0),
            client_buffer_max=_positive_bytes("CC_CLIENT_BUFFER_MAX", 8 * 2**20),
            ws_compression=_compression("CC_WS_COMPRESSION"),
            coalesce_s=_float("CC_COALESCE_S", 1.0),
            ws_origins=tuple(o.strip().rstrip("/") for o in _str("CC_WS_ORIGINS", "").split(",")
                             if o.strip()),
            ws_per_session=_int("CC_WS_PER_SESSION", 8),
            web_workers=max(1, _int("CC_WEB_WORKERS", 2)),
            web_threads=max(1, _int("CC_WEB_THREADS", 8)),
            sim_rate=_float("CC_SIM_RATE", 1.0),
            sim_video_base=_str("CC_SIM_VIDEO_BASE", ""),
            sim_video_port=_int("CC_SIM_VIDEO_PORT", 8060),
            sim_video_spread=_int("CC_SIM_VIDEO_SPREAD", 4),
            sim_video_fps=_float("CC_SIM_VIDEO_FPS", 6.0),
            video_tour_s=max(0, _int("CC_VIDEO_TOUR_S", 20)),
            tile_url=_str("CC_TILE_URL", ""),
            tile_crs=_str("CC_TILE_CRS", "wgs84"),
            session_ttl_s=_int("CC_SESSION_TTL_S", 12 * 3600),
            login_max_failures=_int("CC_LOGIN_MAX_FAILURES", 5),
            login_max_failures_ip=_int("CC_LOGIN_MAX_FAILURES_IP", 20),
            login_max_failures_user=_int("CC_LOGIN_MAX_FAILURES_USER", 10),
            audit_retention_days=_audit_days(_int("CC_AUDIT_RETENTION_DAYS", 180)),
            audit_anon_per_min=_int("CC_AUDIT_ANON_PER_MIN", 10),
            detour_factor=_float("CC_DETOUR_FACTOR", 1.4),
            speeds_kmh=_speeds(_str("CC_SPEEDS_KMH", "")),
            near_radius_m=_float("CC_NEAR_RADIUS_M", 5000.0),
            sla_yellow_ratio=_float("CC_SLA_YELLOW_RATIO", 0.8),
            watch_tick_s=_float("CC_WATCH_TICK_S", 1.0),
            sim_autopilot_s=_float("CC_SIM_AUTOPILOT_S", 60.0),
            demo_users=_str("CC_DEMO_USERS", "1") not in ("0", "false", "no"),
            demo_history_days=_history_days(_int("CC_DEMO_HISTORY_DAYS", 90)),
            demo_history_per_day=max(0.0, _float("CC_DEMO_HISTORY_PER_DAY", 40.0)),
            archive_age_s=_int("CC_ARCHIVE_AGE_S", 24 * 3600),
            archive_every_s=_float("CC_ARCHIVE_EVERY_S", 3600.0),
            archive_batch=_int("CC_ARCHIVE_BATCH", 1000),
            archive_keep_months=_keep_months(_int("CC_ARCHIVE_KEEP_MONTHS", 36)),
            stats_min_age_s=_float("CC_STATS_MIN_AGE_S", 5.0),
            track_keep_days=_int("CC_TRACK_KEEP_DAYS", 30),
            replay_days=max(1, _int("CC_REPLAY_DAYS", 7)),
            media_sources=_sources("CC_MEDIA_SOURCES", ()),
            frame_ancestors=_sources("CC_FRAME_ANCESTORS", ("'none'",)),
            max_content_length=_positive_bytes("CC_MAX_CONTENT_LENGTH", 1 << 20),
            trusted_proxies=_int("CC_TRUSTED_PROXIES", 0),
            cookie_secure=_choice("CC_COOKIE_SECURE", "auto", ("auto", "true")),
            log_format=_choice("CC_LOG_FORMAT", "text", ("text", "json")),
            metrics_token=_str("CC_METRICS_TOKEN", "").strip(),
        )
