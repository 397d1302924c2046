"""The duty desk (值班台): the queue of alarms nobody has acknowledged, and what the duty
officer does with them (docs/DUTY.md, "The duty desk").

The queue is the open alerts (`Palerts:open`) of the kinds that need a person now:
`critical_event` (a new level I/II event, a task rejected or asking for support), `sla_red`,
`sos` and `geofence_exit`. Yellow cards stay on the wall's alert strip: they warn, a red card
is the alarm. Most severe first (an SOS counts as the gravest), then newest.

Actions: acknowledge (`Alerts.ack`, through `POST /api/alerts/<id>/ack`), add a note, hand to
a commander (the alert stays open, leaves the desk's sounding set and waits for a
commander's acknowledgement), and silence: with a reason, for a few minutes, covering the
alarms sounding at that moment only; a new alarm sounds again. Record changes go through
`Alerts.update` (compare-and-set, an `alert` upsert in the change log).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from dashboard.command.alerts import Alerts
from dashboard.errors import Refused
from dashboard.store import Store, now_ms

DESK_KINDS: Final = ("sos", "critical_event", "sla_red", "geofence_exit")
SCAN_MAX: Final = 500  # open alerts read per queue (the newest): bounded work per request
QUEUE_MAX: Final = 200
RECENT_MAX: Final = 20
NOTES_MAX: Final = 20  # notes kept on one alert (the latest); the audit log has every one
NOTE_TEXT_MAX: Final = 500
REASON_MAX: Final = 200
SILENCE_MINUTES: Final = (5, 15, 30, 60)
SILENCE_MAX_MIN: Final = 60
COVERS_MAX: Final = 500  # alarm ids one silence covers





def rank(alert: dict[str, Any]) -> int:
    """0 for an SOS (a person's safety), else the severity (1 = level I, the gravest)."""
    if alert.get("kind") == "sos":
        return 0
    try:
        return int(alert.get("severity") or 4)
    except (TypeError, ValueError):
        return 4


def order_key(alert: dict[str, Any]) -> tuple[int, int]:
    """Most severe first, then newest."""
    return rank(alert), -int(alert.get("ts") or 0)


def on_desk(alert: dict[str, Any]) -> bool:
    return alert.get("kind") in DESK_KINDS and not alert.get("acked_by")


def sounds(alert: dict[str, Any]) -> bool:
    """An open desk alarm that nobody has handed over yet (a silence aside)."""
    return on_desk(alert) and not alert.get("handed_to_role")


class Duty:
    """The desk's view of the alerts on `store`, and its changes."""

    def __init__(self, store: Store, alerts: Alerts | None = None,
                 clock: Callable[[], int] = now_ms) -> None:
        self.store = store
        self.alerts = alerts or Alerts(store, clock)
        self.clock = clock

    # -- reading -------------------------------------------------------------------------

    def board(self, scope: str | None = None) -> dict[str, Any]:
        """Everything the desk shows, for one user's scope (None = the whole city)."""
        now = int(self.clock())
        scanned = self.alerts.open(SCAN_MAX)
        found = [a for a in scanned if on_desk(a)]
        acked = [a for a in self.alerts.acked(SCAN_MAX) if a.get("kind") in DESK_KINDS]
        areas = self.alerts.areas(found + acked)
        if scope:
            found = [a for a in found if (areas.get(a["id"]) or "").startswith(scope)]
            acked = [a for a in acked if (areas.get(a["id"]) or "").startswith(scope)]
        for a in found + acked:
            a["area"] = areas.get(a["id"])
        found.sort(key=order_key)
        queue = [a for a in found if not a.get("handed_to_role")][:QUEUE_MAX]
        handed = [a for a in found if a.get("handed_to_role")][:QUEUE_MAX]
        silence = self.silence_state()
        covered = set(silence["covers"]) if silence else set()
        return {
            "queue": queue,
            "handed": handed,
            "recent": acked[:RECENT_MAX],
            "silence": silence,
            "sounding": [a["id"] for a in queue if a["id"] not in covered],
            # how many wait, past the listed QUEUE_MAX; `more`: past what one read looks at
            "waiting": sum(1 for a in found if not a.get("handed_to_role")),
            "more": len(scanned) >= SCAN_MAX,
            "server_ts": now,
        }

    def silence_state(self) -> dict[str, Any] | None:
        """The running silence (`Pduty:silence`), or None; it ends by its own TTL."""
        raw = self.store.r.get(self.store.key("duty:silence"))
        if not raw:
            return None
        silence = json.loads(raw)
        return silence if int(silence.get("until") or 0) > int(self.clock()) else None

    # -- changes -------------------------------------------------------------------------

    def note(self, alert_id: str, *, by: str, text: str) -> dict[str, Any]:
        """Add a note (by, ts, text) to an alert; the latest NOTES_MAX are kept."""
        text = _clean(text, NOTE_TEXT_MAX, "note")

        def change(alert: dict[str, Any]) -> dict[str, Any]:
            notes = [n for n in alert.get("notes") or [] if isinstance(n, dict)]
            notes.append({"by": by, "ts": int(self.clock()), "text": text})
            return {**alert, "notes": notes[-NOTES_MAX:]}

        return self.alerts.update(alert_id, change)

    def handoff(self, alert_id: str, *, by: str, to: str | None = None) -> dict[str, Any]:
        """Hand an open alert to a commander (`to`, a commander's user name, or any
        commander when None). It stays open, stops sounding on the desk and shows as handed
        over until a commander acknowledges it. Handing it again to the same commander
        changes nothing; to another, moves it."""

        def change(alert: dict[str, Any]) -> dict[str, Any] | None:
            if alert.get("acked_by"):
                raise Refused("already_acked", 409, "this alert is already acknowledged")
            if alert.get("handed_to_role") and alert.get("handed_to") == to:
                return None
            return {**alert, "handed_to_role": "commander", "handed_to": to,
                    "handed_by": by, "handed_ts": int(self.clock())}

        return self.alerts.update(alert_id, change)

    def silence(self, *, by: str, reason: str, minutes: int,
                sounding: list[str]) -> dict[str, Any]:
        """Silence the alarms sounding now (`sounding`, the ids the user's desk sounds) for
        `minutes`; a silence still running is extended and its alarms stay covered. A new
        alarm is not covered and sounds again."""
        reason = _clean(reason, REASON_MAX, "reason")
        if isinstance(minutes, bool) or not isinstance(minutes, int) or \
                not 1 <= minutes <= SILENCE_MAX_MIN:
            raise Refused("bad_minutes", 400,
                          f"minutes must be a whole number 1-{SILENCE_MAX_MIN}")
        now = int(self.clock())
        before = self.silence_state()
        covers = list(dict.fromkeys([*(before["covers"] if before else []), *sounding]))
        silence = {"by": by, "reason": reason, "ts": now, "minutes": minutes,
                   "until": now + minutes * 60_000, "covers": covers[-COVERS_MAX:]}
        self.store.r.set(self.store.key("duty:silence"),
                         json.dumps(silence, ensure_ascii=False), ex=minutes * 60)
        return silence

    def unsilence(self) -> dict[str, Any] | None:
        """End the running silence; returns what it was (None when there was none)."""
        before = self.silence_state()
        self.store.r.delete(self.store.key("duty:silence"))
        return before


def _clean(text: Any, limit: int, name: str) -> str:
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise Refused(f"bad_{name}", 400, f"{name} must be text")
    text = text.strip()
    if not text:
        raise Refused(f"no_{name}", 400, f"a {name} is required")
    if len(text) > limit:
        raise Refused(f"bad_{name}", 400, f"{name} is longer than {limit} characters")
    return text
