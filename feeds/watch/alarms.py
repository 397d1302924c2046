"""Alarms from what the feed says: a level I/II event is announced once in its life, and a
grid worker's SOS once per episode."""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, Final

from dashboard.city import load_city
from dashboard.command.alert_upgrade import upgrade_alerts
from dashboard.i18n import LANGS, t
from dashboard.models import EVENT_CLOSED, SEVERITIES, URGENT_LEVELS
from feeds.watch.context import DAY_S, Context, Handler, remember

CRITICAL_TTL_S: Final = 30 * DAY_S  # a level I/II event is announced once in its life
SOS_TTL_S: Final = 7 * DAY_S


class Alarms(Handler):
    def __init__(self) -> None:
        self._critical_done: OrderedDict[str, None] = OrderedDict()
        self._worker_status: OrderedDict[str, str] = OrderedDict()

    def attach(self, ctx: Context) -> None:
        super().attach(ctx)
        self._critical_done.clear()
        self._worker_status.clear()
        # alerts raised before they carried every language: given it where it reads back
        upgrade_alerts(ctx.alerts, load_city(ctx.settings.city), ctx.settings.lang)

    def entry(self, seq: int, kind: str, op: str, record: dict[str, Any]) -> bool:
        if kind == "event":
            return self._event(record)
        # Moves keep the status by definition (ingest logs `move` only then).
        if kind == "worker" and op == "upsert":
            return self._worker(seq, record)
        return False

    def _event(self, event: dict[str, Any]) -> bool:
        event_id = str(event.get("id"))
        if event.get("severity") not in URGENT_LEVELS or event.get("status") in EVENT_CLOSED:
            return False
        if event_id in self._critical_done:
            return False
        ctx = self.ctx
        roman = SEVERITIES[int(event["severity"])].roman
        level = {lang: t("sev.level", lang, roman=roman) for lang in LANGS}
        feed, parts = ctx.title(event, event_id)
        raised = ctx.raise_alert("critical_event", event_id, event_id,
                                 ("alert.critical_event", feed, {**parts, "level": level}),
                                 int(event["severity"]), CRITICAL_TTL_S)
        remember(self._critical_done, event_id, None)
        return raised

    def _worker(self, seq: int, worker: dict[str, Any]) -> bool:
        worker_id = str(worker.get("id"))
        status = worker.get("status")
        before = self._worker_status.get(worker_id)
        remember(self._worker_status, worker_id, str(status))
        if status != "sos" or before == "sos":
            return False
        # A new episode: the seq where it began tells it from the next one.
        ctx = self.ctx
        store = ctx.store
        event: dict[str, Any] = {}
        task_id = store.r.get(store.key(f"task:unit:worker:{worker_id}"))
        if task_id:
            raw = store.r.hget(store.key("state:task"), task_id)
            event_id = json.loads(raw).get("event_id") if raw else None
            event = (store.event(event_id) if event_id else None) or {}
        person = {"name": str(worker.get("name") or worker_id)}
        if event:
            feed, parts = ctx.title(event, event.get("id"))
            text = ("alert.sos_event", {**person, **feed}, parts)
        else:
            text = ("alert.sos", person, {})
        # An SOS is about a person's safety: the gravest level unless its event says so too.
        return ctx.raise_alert("sos", worker_id, event.get("id"), text,
                               int(event.get("severity") or 1), SOS_TTL_S, str(seq))
