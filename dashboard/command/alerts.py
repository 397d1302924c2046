"""Alerts: raised once per cause, kept until acknowledged, published on `cc:alert`.

Keys (docs/REDIS-KEYS.md): `Pstate:alert` (id → JSON), `Palerts:open` (zset id → ts),
`Palert:once:{kind}:{subject}:{event}[:{cause}]` (dedupe, with a TTL) and, added here,
`Palerts:acked` (zset id → acked ts) so old acknowledged alerts can be dropped without a
scan. Every change goes through the change log (`alert` frames), so walls replay it.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any, Final

from dashboard import i18n, lua
from dashboard.i18n import LANGS, t
from dashboard.store import Store, now_ms

# The kinds `cc:alert` may carry (docs/PROTOCOL.md, "Outbound channels").
ALERT_KINDS: Final = ("critical_event", "sla_yellow", "sla_red", "geofence_exit", "sos")
# Acknowledged alerts are kept this long, then dropped; unacknowledged ones for OPEN_KEEP_MS
# (a month nobody looked at is a month of noise, and the hash must not grow with uptime).
ACKED_KEEP_MS: Final = 7 * 24 * 3600 * 1000
OPEN_KEEP_MS: Final = 30 * 24 * 3600 * 1000
NOTE_MAX: Final = 500
MESSAGE_MAX: Final = 500
TRIM_BATCH: Final = 1000

# ARGV[3] once-key suffix, [4] ttl s, [5] id, [6] stored JSON, [7] ts, [8] cc:alert JSON.
_RAISE: Final = lua.source(__file__, "alert_raise.lua")

# ARGV[3] id, [4] the stored JSON the caller read (compare-and-set), [5] new JSON, [6] the
# acknowledgement's ts, or "" for a change that leaves the alert open or acknowledged as it
# was (a note, a hand-over).
_CHANGE: Final = lua.source(__file__, "alert_change.lua")
UPDATE_ATTEMPTS: Final = 5


def alert_texts(key: str, feed: Mapping[str, str], **parts: Any) -> dict[str, str]:
    """An alert's text in every language (`texts` of the record): the table's `key` with the
    product's `parts` filled in (a {lang: text} dict gives each language its own) and every
    `feed` value left as its `{name}` placeholder, so a page shows the product's words in
    its language and the feed's as sent (`fill`; the browser marks them as feed text)."""
    out = {}
    for lang in LANGS:
        kw = {k: (v.get(lang, "") if isinstance(v, dict) else v) for k, v in parts.items()}
        kw.update({k: "{" + k + "}" for k in feed})
        out[lang] = t(key, lang, **kw)
    return out


def fill(template: str, feed: Mapping[str, str]) -> str:
    """A template of `alert_texts` with its feed values put in (one pass, the table's own
    rule: a feed value that itself looks like a placeholder stays as it is)."""
    return i18n.fill(template, feed)


def alert_segments(alert: Mapping[str, Any], lang: str) -> list[tuple[str, bool]]:
    """A stored alert's text in `lang` as (text, is the feed's) pieces, for a page that marks
    the feed's words; its `message` as one piece when it has no `texts`, marked as data: it
    speaks the center's language, not necessarily the page's (dashboard/command/
    alert_upgrade.py gives old alerts `texts` wherever their message reads back)."""
    texts = alert.get("texts")
    template = texts.get(lang) if isinstance(texts, dict) else None
    if not isinstance(template, str):
        return [(str(alert.get("message") or ""), True)]
    found = alert.get("feed")
    feed: Mapping[str, Any] = found if isinstance(found, dict) else {}
    out: list[tuple[str, bool]] = []
    for i, part in enumerate(re.split(r"\{(\w+)\}", template)):
        if i % 2 and part in feed:
            out.append((str(feed[part]), True))
        elif i % 2:
            out.append(("{" + part + "}", False))
        elif part:
            out.append((part, False))
    return out


def alert_text(alert: Mapping[str, Any], lang: str) -> str:
    """A stored alert's text in `lang` (its `texts` filled with its `feed`); its `message`
    when it was raised before alerts carried every language."""
    texts = alert.get("texts")
    template = texts.get(lang) if isinstance(texts, dict) else None
    if not isinstance(template, str):
        return str(alert.get("message") or "")
    feed = alert.get("feed")
    return fill(template, feed if isinstance(feed, dict) else {})


class AlertNotFound(LookupError):
    """No alert with this id (never raised, or dropped after its keep time)."""


class AlertBusy(RuntimeError):
    """The record kept changing under a compare-and-set: try again later."""


class Alerts:
    """Raise, acknowledge and list alerts on `store`."""

    def __init__(self, store: Store, clock: Callable[[], int] = now_ms) -> None:
        self.store = store
        self.clock = clock
        self._raise = store.script(_RAISE)
        self._change = store.script(_CHANGE)

    def raise_once(self, kind: str, subject_id: str, event_id: str | None, message: str,
                   severity: int, ttl_s: int = 86400, cause: str | None = None,
                   texts: Mapping[str, str] | None = None,
                   feed: Mapping[str, str] | None = None) -> dict | None:
        """Store, show and publish an alert unless this cause was raised within `ttl_s`.

        The cause is `(kind, subject_id, event_id)`, refined by `cause` when one subject can
        have several (an SOS episode, the stage of a deadline). Returns the stored alert, or
        None when it was already raised. Atomic: concurrent callers raise it once.
        `message` is the text in the center's language (what `cc:alert` carries); `texts`
        and `feed` (`alert_texts`), when given, let every page show it in its own.
        """
        if kind not in ALERT_KINDS:
            raise ValueError(f"alert kind must be one of {', '.join(ALERT_KINDS)}")
        if not 1 <= int(severity) <= 4:
            raise ValueError("severity must be 1-4")
        ts = int(self.clock())
        alert: dict[str, Any] = {
            "id": f"A{ts}-{secrets.token_hex(3)}", "kind": kind, "subject_id": subject_id,
            "event_id": event_id, "ts": ts, "message": message[:MESSAGE_MAX],
            "severity": int(severity), "acked_by": None, "acked_ts": None, "note": "",
        }
        if texts:
            alert["texts"] = {lang: str(v)[:MESSAGE_MAX] for lang, v in texts.items()}
            alert["feed"] = {k: str(v)[:MESSAGE_MAX] for k, v in (feed or {}).items()}
        # where it happened, so every reader can honour a user's scope without a lookup
        alert["grid_id"] = self.areas([alert]).get(alert["id"])
        public = {k: alert[k] for k in ("kind", "subject_id", "event_id", "ts", "message")}
        once = f"{kind}:{subject_id}:{event_id or '-'}" + (f":{cause}" if cause else "")
        done = self._raise(once, max(1, int(ttl_s)), alert["id"], _dumps(alert), ts,
                           _dumps(public))
        return alert if done else None

    def ack(self, alert_id: str, *, by: str, note: str = "") -> dict:
        """Acknowledge; acknowledging again changes nothing and returns the first answer."""

        def acked(alert: dict[str, Any]) -> dict[str, Any] | None:
            if alert.get("acked_by"):
                return None
            return {**alert, "acked_by": by, "acked_ts": int(self.clock()),
                    "note": note[:NOTE_MAX]}

        # losing every race means others acknowledged it meanwhile: theirs is the answer
        alert = self._compare_and_set(alert_id, acked, ack=True) or self.get(alert_id)
        if alert is None:
            raise AlertNotFound(alert_id)
        return alert

    def update(self, alert_id: str,
               change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> dict:
        """Apply `change` (the stored alert → the new one, or None for "nothing to do") with
        compare-and-set, read again when someone wrote in between; the new record goes to
        the change log as an `alert` upsert, so walls and desks follow. Returns the stored
        alert. `change` may raise to refuse (the caller's exception passes through)."""
        alert = self._compare_and_set(alert_id, change, ack=False)
        if alert is None:
            raise AlertBusy(alert_id)
        return alert

    def _compare_and_set(self, alert_id: str,
                         change: Callable[[dict[str, Any]], dict[str, Any] | None],
                         ack: bool) -> dict | None:
        """The stored alert after `change` (unchanged when it answers None); None when the
        record changed under every one of UPDATE_ATTEMPTS tries."""
        for _ in range(UPDATE_ATTEMPTS):
            raw = self.store.r.hget(self.store.key("state:alert"), alert_id)
            if raw is None:
                raise AlertNotFound(alert_id)
            raw = _text(raw)
            new = change(json.loads(raw))
            if new is None:
                return json.loads(raw)
            code = int(self._change(alert_id, raw, _dumps(new),
                                    new["acked_ts"] if ack else ""))
            if code == 1:
                return new
            if code == 0:
                raise AlertNotFound(alert_id)
        return None

    def get(self, alert_id: str) -> dict | None:
        raw = self.store.r.hget(self.store.key("state:alert"), alert_id)
        return json.loads(raw) if raw else None

    def open(self, limit: int = 200) -> list[dict]:
        """Unacknowledged alerts, newest first."""
        ids = self.store.r.zrevrange(self.store.key("alerts:open"), 0, max(0, limit - 1))
        return self._load(ids)

    def open_until(self, ts: int, limit: int = 1000) -> list[str]:
        """Ids of the unacknowledged alerts raised at or before `ts`, oldest first."""
        ids = self.store.r.zrangebyscore(self.store.key("alerts:open"), "-inf", ts, start=0,
                                         num=limit)
        return [_text(i) for i in ids]

    def recent(self, limit: int = 200) -> list[dict]:
        """Open alerts first (newest first), then acknowledged ones, latest acknowledged first."""
        found = self.open(limit)
        if len(found) < limit:
            ids = self.store.r.zrevrange(self.store.key("alerts:acked"), 0,
                                         limit - len(found) - 1)
            found += self._load(ids)
        return found

    def acked(self, limit: int = 200) -> list[dict]:
        """Acknowledged alerts, latest acknowledged first."""
        ids = self.store.r.zrevrange(self.store.key("alerts:acked"), 0, max(0, limit - 1))
        return self._load(ids)

    def trim(self, now: int | None = None) -> int:
        """Drop acknowledged alerts older than ACKED_KEEP_MS and open ones older than
        OPEN_KEEP_MS; returns how many went. The watch service calls this every tick."""
        now = int(self.clock()) if now is None else now
        r, dropped = self.store.r, 0
        for zset, keep in (("alerts:acked", ACKED_KEEP_MS), ("alerts:open", OPEN_KEEP_MS)):
            key = self.store.key(zset)
            ids = r.zrangebyscore(key, "-inf", now - keep, start=0, num=TRIM_BATCH)
            if ids:
                pipe = r.pipeline(transaction=True)
                pipe.hdel(self.store.key("state:alert"), *ids)
                pipe.zrem(key, *ids)
                pipe.execute()
                dropped += len(ids)
        return dropped

    def areas(self, alerts: list[dict]) -> dict[str, str | None]:
        """Alert id → the grid code it is about: its event's grid, else (an SOS with no
        event) where the worker is, else their assigned grid; for a worker who left their
        grid (geofence) the grid assigned to them; None when unknown. Codes nest
        (town ⊂ community ⊂ grid by prefix), so a scope matches by `startswith`."""
        r, key = self.store.r, self.store.key
        event_ids = sorted({a["event_id"] for a in alerts if a.get("event_id")})
        worker_ids = sorted({a["subject_id"] for a in alerts
                             if not a.get("event_id")
                             and a.get("kind") in ("sos", "geofence_exit")})
        grids: dict[tuple[str, str], str | None] = {}
        homes: dict[str, str | None] = {}
        for kind, ids in (("event", event_ids), ("worker", worker_ids)):
            if ids:
                for entity_id, raw in zip(ids, r.hmget(key(f"state:{kind}"), ids), strict=True):
                    record = json.loads(raw) if raw else {}
                    grids[(kind, entity_id)] = record.get("loc_grid_id") or record.get("grid_id")
                    if kind == "worker":
                        homes[entity_id] = record.get("grid_id") or record.get("loc_grid_id")
        out: dict[str, str | None] = {}
        for alert in alerts:
            if alert.get("event_id"):
                out[alert["id"]] = grids.get(("event", alert["event_id"]))
            elif alert.get("kind") == "geofence_exit":
                out[alert["id"]] = homes.get(alert.get("subject_id", ""))
            else:
                out[alert["id"]] = grids.get(("worker", alert.get("subject_id", "")))
        return out

    def _load(self, ids: list[Any]) -> list[dict]:
        if not ids:
            return []
        raws = self.store.r.hmget(self.store.key("state:alert"), ids)
        return [json.loads(raw) for raw in raws if raw]


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
