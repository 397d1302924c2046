"""The duty roster and the shift handover over HTTP (docs/DUTY.md; routes: docs/HTTP.md).

`GET/PUT /api/roster`, `POST/GET /api/handover`, `GET/PUT /api/handover/<id>`,
`POST /api/handover/<id>/sign|accept` (JSON; 400/401/403/404/409 as JSON errors; every
change audited) and the printable report `GET /duty/handover/<id>/print` (plain HTML,
every text escaped, A4 print CSS).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, g, jsonify, request

from callbacks.access.auth import current_session, out_of_scope, require
from callbacks.access.mutation import Done, mutation, name_target
from callbacks.errors import error, json_body, refusal
from dashboard.command.alerts import alert_segments
from dashboard.config import Settings
from dashboard.duty.handover import SECTIONS, Handovers
from dashboard.duty.roster import RosterError, RosterStore
from dashboard.errors import Refused
from dashboard.i18n import normalise_lang, t
from dashboard.models import SEVERITIES
from dashboard.scope import covers
from dashboard.store import Store
from layouts import plain

WRITERS: Final = ("duty_officer",)  # a commander counts as one (dashboard/access/auth.py IMPLIES)
READERS: Final = ("duty_officer", "leader")
LIST_MAX: Final = 200


def create_handover_api(store: Store, settings: Settings,
                        clock: Callable[[], int] | None = None) -> Blueprint:
    """The routes; `clock()` (epoch ms) is injectable so tests choose the moment."""
    now_ms = clock or (lambda: int(time.time() * 1000))
    rosters = RosterStore(store, settings.timezone)
    books = Handovers(store, settings, rosters.get, clock=now_ms)
    api = Blueprint("handover", __name__)

    def lang() -> str:
        return normalise_lang(request.args.get("lang") or settings.lang)

    def own_scope() -> str | None:
        return g.session.scope or None

    def visible(report: dict[str, Any]) -> bool:
        return covers(own_scope(), report.get("scope") or "")

    @api.get("/api/roster")
    @require()
    def roster_get() -> Any:
        try:
            roster = rosters.get()
        except RosterError as exc:  # a stored roster broken by hand in Redis
            return error(500, "bad_roster", str(exc), where=exc.where)
        return jsonify({"roster": roster.doc, **roster.now_json(now_ms(), lang())})

    @api.put("/api/roster")
    @mutation("roster.put", "commander", target=lambda: "roster")
    def roster_put() -> Done:
        try:
            roster = rosters.put(request.get_json(silent=True))
        except RosterError as exc:
            raise Refused("bad_roster", 400, str(exc), where=exc.where) from None
        return Done({"roster": roster.doc, **roster.now_json(now_ms(), lang())},
                    detail={"teams": len(roster.teams), "overrides": len(roster.overrides)})

    @api.post("/api/handover")
    @mutation("handover.draft", *WRITERS)
    def handover_create() -> Done:
        body = json_body(optional=True)
        report = books.create(by=g.session.user, scope=own_scope(),
                              from_ms=body.get("from"), to_ms=body.get("to"))
        name_target(report["id"])
        return Done({"handover": report}, 201, detail={
            "from": report["from"], "to": report["to"], "counts": report["counts"]})

    @api.get("/api/handover")
    @require(*READERS)
    def handover_list() -> Any:
        raw = request.args.get("limit") or "50"
        if not raw.isdigit() or not 1 <= int(raw) <= LIST_MAX:
            return error(400, "bad_limit", f"limit: a whole number 1-{LIST_MAX}")
        found = books.list(int(raw), own_scope())
        current = rosters.get().at(now_ms())
        return jsonify({"handovers": found,
                        "shift": current.to_dict(rosters.get().people, lang())})

    def one(report_id: str) -> dict[str, Any]:
        report = books.get(report_id)
        # outside the scope answers as unknown: ids of other areas do not leak
        if report is not None and not visible(report):
            out_of_scope()
            report = None
        if report is None:
            raise Refused("not_found", 404, f"no handover {report_id!r}")
        return report

    @api.get("/api/handover/<report_id>")
    @require(*READERS)
    def handover_get(report_id: str) -> Any:
        try:
            return jsonify({"handover": one(report_id)})
        except Refused as exc:
            return refusal(exc)

    def changed(report: dict[str, Any], **detail: Any) -> Done:
        return Done({"handover": report}, detail={**detail, "state": report["state"]})

    @api.put("/api/handover/<report_id>")
    @mutation("handover.edit", *WRITERS, target="report_id")
    def handover_edit(report_id: str) -> Done:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not ({"remarks", "summary", "refresh"} & set(body)):
            raise Refused("bad_body", 400, 'send JSON {"remarks": "…", "summary": "…", '
                          '"refresh": true} (any of them)')
        one(report_id)
        return changed(books.edit(report_id, by=g.session.user, remarks=body.get("remarks"),
                                  summary=body.get("summary"),
                                  refresh=body.get("refresh") is True),
                       fields=sorted(set(body) & {"remarks", "summary", "refresh"}))

    @api.post("/api/handover/<report_id>/sign")
    @mutation("handover.sign", *WRITERS, target="report_id")
    def handover_sign(report_id: str) -> Done:
        one(report_id)
        return changed(books.sign(report_id, by=g.session.user))

    @api.post("/api/handover/<report_id>/accept")
    @mutation("handover.accept", *WRITERS, target="report_id")
    def handover_accept(report_id: str) -> Done:
        body = json_body(optional=True)
        one(report_id)
        return changed(books.accept(report_id, by=g.session.user, note=body.get("note")))

    @api.get("/duty/handover/<report_id>/print")
    def handover_print(report_id: str) -> Any:
        found = current_session()  # the guard already sent anyone without one to /login
        if found is None or not found.may(*READERS):
            return _page(t("handover.forbidden", lang()), 403)
        g.session = found
        report = books.get(report_id)
        if report is None or not visible(report):
            return _page(f"{t('handover.title', lang())}: {report_id}", 404)
        body = print_html(report, lang(), settings, now_ms())
        return _page_response(body, 200)

    return api


def _page_response(body: str, status: int) -> Response:
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _page(message: str, status: int) -> Response:
    return _page_response(plain.render("message.html", message=message), status)




Cell = list[tuple[str, bool]]


def print_html(report: dict[str, Any], lang: str, settings: Settings, now: int) -> str:
    """The printable report: plain HTML from layouts/templates/handover_print.html, every
    value escaped by the template, no script. Here only the values are put into words."""
    tz = ZoneInfo(settings.timezone)

    def when(ms: Any) -> str:
        if not isinstance(ms, int):
            return "—"
        return datetime.fromtimestamp(ms / 1000, tz).strftime("%Y-%m-%d %H:%M")

    def dur(seconds: Any) -> str:
        if not isinstance(seconds, int):
            return ""
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"

    def level(sev: Any) -> str:
        found = SEVERITIES.get(sev) if isinstance(sev, int) else None
        return t("sev.level", lang, roman=found.roman) if found else ""

    def person(p: dict[str, Any] | None) -> str:
        return (p.get("name") or p.get("user") or "") if p else "—"

    # A cell is (text, is the feed's) pieces: the template marks the feed's words (README,
    # "Languages"), the rest is in the page's language.
    def ours(text: Any) -> Cell:
        return [(str(text), False)]

    def theirs(text: Any) -> Cell:
        return [(str(text), True)] if text else []

    def crew(duty: dict[str, Any] | None) -> Cell:
        if not duty:
            return ours("—")
        out = ours(f"{duty.get('date') or ''} "
                   f"{(duty.get('shift_names') or {}).get(lang) or duty.get('shift_name') or ''}"
                   f" · {t('handover.officers', lang)} ")
        for n, officer in enumerate(duty.get("officers") or []):
            out += (ours(t("sep.list", lang)) if n else []) + theirs(person(officer))
        return out + ours(f" · {t('handover.leader', lang)} ") + theirs(person(duty.get("leader")))

    def rows(name: str, items: list[dict[str, Any]]) -> tuple[tuple[str, ...], list[list[Cell]]]:
        if name == "alarms":
            return ("col_time", "col_kind", "col_level", "col_text"), [
                [ours(when(a.get("ts"))), ours(t(f"alert.kind.{a.get('kind')}", lang)),
                 ours(level(a.get("severity"))), alert_segments(a, lang)] for a in items]
        if name == "notes":
            return ("col_time", "col_by", "col_id", "col_text"), [
                [ours(when(n.get("ts"))), theirs(n.get("by")),
                 ours(n.get("event_id") or n.get("alert_id") or ""), theirs(n.get("text"))]
                for n in items]
        stamp = "closed" if name == "closed" else "reported"
        return ("col_id", "col_title", "col_level", "col_status", "col_time", "col_age"), [
            [ours(i.get("id")), (theirs(i.get("title")) if i.get("title")
                                 else ours(t(f"type.{i.get('type')}", lang)))
             + (ours(f" [{t('handover.overdue_mark', lang)}]") if i.get("overdue") else []),
             ours(level(i.get("severity"))), ours(t(f"evst.{i.get('status')}", lang)),
             ours(when(i.get(stamp))), ours(dur(i.get("open_s")))] for i in items]

    sections = []
    for name in SECTIONS:
        sec = (report.get("sections") or {}).get(name) or {"items": [], "total": 0, "more": 0}
        head, body = rows(name, sec.get("items") or [])
        sections.append({"name": name, "total": int(sec.get("total") or 0), "head": head,
                         "rows": body, "more": sec.get("more") or 0,
                         "kind": "al" if name in ("alarms", "notes") else "ev"})

    def signature(key: str, label: str) -> dict[str, Any]:
        found = report.get(key) or {}
        return {"label": label, "signed": bool(found), "name": theirs(found.get("name")),
                "by": str(found.get("by") or ""), "when": when(found.get("ts")),
                "note": theirs(found.get("note")), "sha256": str(found.get("sha256") or ""),
                "hmac": str(found.get("hmac") or "")}

    check = report.get("intact")
    verdict = "handover.intact" if check else "handover.unverifiable" \
        if report.get("unverifiable") else "handover.tampered"
    return plain.render(
        "handover_print.html", lang=lang,
        id=str(report.get("id")), state=str(report.get("state")),
        center=settings.center_name_en if lang == "en" else settings.center_name,
        window=(when(report.get("from")), when(report.get("to"))),
        outgoing=crew(report.get("shift")), incoming=crew(report.get("incoming")),
        author=(theirs(report.get("author_name")), str(report.get("author") or "")),
        generated=when(report.get("generated")), sections=sections,
        summary=theirs(report.get("summary")), remarks=theirs(report.get("remarks")),
        signatures=[signature("signed", "handover.signed_by"),
                    signature("accepted", "handover.accepted_by")],
        verdict="" if check is None else t(verdict, lang), printed=when(now))
