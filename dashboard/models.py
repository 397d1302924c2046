"""The domain's vocabulary: entity kinds, severity levels, status codes, the event taxonomy.

Codes only; their display names live in `dashboard.i18n`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

KINDS: Final = ("event", "worker", "resource", "camera", "feedback")
# Kinds whose state is kept and shown on the map (feedback is a message about a task, not a thing).
STATEFUL_KINDS: Final = ("event", "worker", "resource", "camera")


@dataclass(frozen=True)
class Severity:
    level: int
    roman: str
    colour: str


# National emergency levels (GB/T, 国家突发事件分级): I is the gravest.
SEVERITIES: Final = {
    1: Severity(1, "I", "#e53935"),
    2: Severity(2, "II", "#fb8c00"),
    3: Severity(3, "III", "#fdd835"),
    4: Severity(4, "IV", "#1e88e5"),
}
SEVERITY_COLOURS: Final = {level: s.colour for level, s in SEVERITIES.items()}
# Levels that pulse on the map and are pushed forward on arrival.
URGENT_LEVELS: Final = frozenset({1, 2})

SOURCES: Final = ("app", "wechat", "hotline", "video_ai", "iot", "patrol", "police", "other")

EVENT_STATUSES: Final = (
    "reported", "dispatched", "in_progress", "handled", "verified", "closed", "cancelled",
)
EVENT_CLOSED: Final = frozenset({"closed", "cancelled"})
EVENT_IN_PROGRESS: Final = frozenset({"dispatched", "in_progress"})

WORKER_STATUSES: Final = ("on_duty", "busy", "off_duty", "sos")
RESOURCE_KINDS: Final = (
    "fire_engine", "ambulance", "police_car", "patrol_car", "law_enforcement", "rescue_team",
    "volunteer", "drone", "supply_depot", "shelter", "other",
)
RESOURCE_STATUSES: Final = (
    "available", "dispatched", "en_route", "on_scene", "returning", "unavailable",
)
STREAM_TYPES: Final = ("hls", "mp4", "webm", "mjpeg", "image", "none")
FEEDBACK_STAGES: Final = ("accepted", "arrived", "handled", "rejected", "need_support")
CRS_CODES: Final = ("wgs84", "gcj02", "bd09")

CATEGORIES: Final = (
    "natural_disaster", "accident", "public_health", "social_security", "grid_governance", "other",
)

# Event type code → category. Unknown codes are accepted as category "other".
EVENT_TYPES: Final[dict[str, str]] = {
    # 自然灾害
    "flood": "natural_disaster",
    "rainstorm": "natural_disaster",
    "typhoon": "natural_disaster",
    "earthquake": "natural_disaster",
    "geological_hazard": "natural_disaster",
    "forest_fire": "natural_disaster",
    "snow_ice": "natural_disaster",
    "drought": "natural_disaster",
    # 事故灾难
    "fire": "accident",
    "traffic_accident": "accident",
    "hazmat_leak": "accident",
    "gas_leak": "accident",
    "building_collapse": "accident",
    "production_safety": "accident",
    "water_pipe_burst": "accident",
    "power_outage": "accident",
    # 公共卫生
    "epidemic": "public_health",
    "food_poisoning": "public_health",
    "animal_epidemic": "public_health",
    # 社会安全
    "mass_incident": "social_security",
    "fight": "social_security",
    "theft": "social_security",
    "missing_person": "social_security",
    "drowning": "social_security",
    # 网格治理 (everyday grid governance)
    "dispute": "grid_governance",
    "safety_hazard": "grid_governance",
    "illegal_parking": "grid_governance",
    "street_vending": "grid_governance",
    "garbage": "grid_governance",
    "elderly_alone": "grid_governance",
    "illegal_construction": "grid_governance",
    "road_damage": "grid_governance",
    "noise": "grid_governance",
    "manhole_cover": "grid_governance",
    "pollution": "grid_governance",
    "petition": "grid_governance",
}


def category_of(event_type: str) -> str:
    """The taxonomy category of an event type code; unknown codes are `other`."""
    return EVENT_TYPES.get(event_type, "other")
