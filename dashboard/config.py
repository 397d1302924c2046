"""Settings, read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def _str(name: str, default: str) -> str:
    raw = os.environ.get(name)
    return raw if raw not in (None, "") else default


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
    # Relay: a client whose oldest queued frame waited client_lag_s (or whose queue reached
    # client_queue_max frames) is resynchronised with a snapshot. Moves are coalesced.
    client_queue_max: int = 20_000
    client_lag_s: float = 2.0
    coalesce_s: float = 1.0
    # Simulator speed multiplier (1 = Pingdu's normal load).
    sim_rate: float = 1.0
    # Optional intranet raster tiles: URL template and its datum (wgs84, gcj02, bd09).
    tile_url: str = ""
    tile_crs: str = "wgs84"

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
            client_queue_max=_int("CC_CLIENT_QUEUE_MAX", 20_000),
            client_lag_s=_float("CC_CLIENT_LAG_S", 2.0),
            coalesce_s=_float("CC_COALESCE_S", 1.0),
            sim_rate=_float("CC_SIM_RATE", 1.0),
            tile_url=_str("CC_TILE_URL", ""),
            tile_crs=_str("CC_TILE_CRS", "wgs84"),
        )
