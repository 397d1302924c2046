"""The duty roster and the shift handover over HTTP (docs/COCKPIT.md, "Shift handover and
the roster").

`GET/PUT /api/roster`, `POST/GET /api/handover`, `GET/PUT /api/handover/<id>`,
`POST /api/handover/<id>/sign|accept` (JSON; 400/401/403/404/409 as JSON errors; every
change audited) and the printable report `GET /duty/handover/<id>/print` (plain HTML,
every text escaped, A4 print CSS).
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, g, jsonify, request

from callbacks.access.auth import audited, current_session, out_of_scope, require
from dashboard.config import Settings
from dashboard.duty.handover import SECTIONS, HandoverError, Handovers
from dashboard.duty.roster import RosterError, RosterStore
from dashboard.i18n import normalise_lang, t
from dashboard.models import SEVERITIES
from dashboard.store import Store

WRITERS: Final = ("duty_officer",)  # a commander counts as one (dashboard/access/auth.py IMPLIES)
READERS: Final = ("duty_officer", "leader")
LIST_MAX: Final = 200


def _error(status: int, code: str, message: str, **extra: Any) -> tuple[Response, int]:
    # as every other API: `error` for people, `code` for programs
    return jsonify({"error": message, "code": code, "message": message, "status": status,
                    **extra}), status


def _refused(exc: HandoverError) -> tuple[Response, int]:
    return jsonify(exc.to_dict()), exc.status


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
        scope = own_scope()
        return not scope or str(report.get("scope") or "").startswith(scope)

    @api.get("/api/roster")
    @require()
    def roster_get() -> Any:
        try:
            roster = rosters.get()
        except RosterError as exc:  # a stored roster broken by hand in Redis
            return _error(500, "bad_roster", str(exc), where=exc.where)
        return jsonify({"roster": roster.doc, **roster.now_json(now_ms(), lang())})

    @api.put("/api/roster")
    @require("commander")
    def roster_put() -> Any:
        body = request.get_json(silent=True)
        try:
            roster = rosters.put(body)
        except RosterError as exc:
            audited("roster.put", "roster", "refused", {"where": exc.where})
            return _error(400, "bad_roster", str(exc), where=exc.where)
        audited("roster.put", "roster", "ok", {"teams": len(roster.teams),
                                               "overrides": len(roster.overrides)})
        return jsonify({"roster": roster.doc, **roster.now_json(now_ms(), lang())})

    @api.post("/api/handover")
    @require(*WRITERS)
    def handover_create() -> Any:
        body = request.get_json(silent=True) if request.data else {}
        if not isinstance(body, dict):
            return _error(400, "bad_body", 'send JSON {} or {"from": ms, "to": ms}')
        try:
            report = books.create(by=g.session.user, scope=own_scope(),
                                  from_ms=body.get("from"), to_ms=body.get("to"))
        except HandoverError as exc:
            audited("handover.draft", "-", "refused", {"error": exc.code})
            return _refused(exc)
        audited("handover.draft", report["id"], "ok",
                {"from": report["from"], "to": report["to"], "counts": report["counts"]})
        return jsonify({"handover": report}), 201

    @api.get("/api/handover")
    @require(*READERS)
    def handover_list() -> Any:
        raw = request.args.get("limit") or "50"
        if not raw.isdigit() or not 1 <= int(raw) <= LIST_MAX:
            return _error(400, "bad_limit", f"limit: a whole number 1-{LIST_MAX}")
        found = books.list(int(raw), own_scope())
        current = rosters.get().at(now_ms())
        return jsonify({"handovers": found,
                        "shift": current.to_dict(rosters.get().people, lang())})

    def one(report_id: str) -> dict[str, Any] | tuple[Response, int]:
        report = books.get(report_id)
        # outside the scope answers as unknown: ids of other areas do not leak
        if report is not None and not visible(report):
            out_of_scope()
            report = None
        if report is None:
            return _error(404, "not_found", f"no handover {report_id!r}")
        return report

    @api.get("/api/handover/<report_id>")
    @require(*READERS)
    def handover_get(report_id: str) -> Any:
        found = one(report_id)
        return found if isinstance(found, tuple) else jsonify({"handover": found})

    def change(action: str, report_id: str, fn: Callable[[], dict[str, Any]],
               detail: dict[str, Any] | None = None) -> Any:
        found = one(report_id)
        if isinstance(found, tuple):
            audited(action, report_id, "refused", {"status": found[1]})
            return found
        try:
            report = fn()
        except HandoverError as exc:
            audited(action, report_id, "refused", {"error": exc.code})
            return _refused(exc)
        audited(action, report_id, "ok", {**(detail or {}), "state": report["state"]})
        return jsonify({"handover": report})

    @api.put("/api/handover/<report_id>")
    @require(*WRITERS)
    def handover_edit(report_id: str) -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not ({"remarks", "summary", "refresh"} & set(body)):
            return _error(400, "bad_body", 'send JSON {"remarks": "…", "summary": "…", '
                          '"refresh": true} (any of them)')
        return change("handover.edit", report_id, lambda: books.edit(
            report_id, by=g.session.user, remarks=body.get("remarks"),
            summary=body.get("summary"), refresh=body.get("refresh") is True),
            {"fields": sorted(set(body) & {"remarks", "summary", "refresh"})})

    @api.post("/api/handover/<report_id>/sign")
    @require(*WRITERS)
    def handover_sign(report_id: str) -> Any:
        return change("handover.sign", report_id,
                      lambda: books.sign(report_id, by=g.session.user))

    @api.post("/api/handover/<report_id>/accept")
    @require(*WRITERS)
    def handover_accept(report_id: str) -> Any:
        body = request.get_json(silent=True) if request.data else {}
        if not isinstance(body, dict):
            return _error(400, "bad_body", 'send JSON {"note": "…"} or nothing')
        return change("handover.accept", report_id,
                      lambda: books.accept(report_id, by=g.session.user, note=body.get("note")))

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
    e = html.escape
    return _page_response(f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{e(message)}'
                          f'</title></head><body><p>{e(message)}</p></body></html>', status)


PRINT_CSS: Final = """
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Serif CJK SC", "Noto Sans CJK SC", "SimSun", "Songti SC", serif;
  color: #000; background: #fff; font-size: 10.5pt; margin: 0 auto; max-width: 186mm; }
h1 { text-align: center; font-size: 18pt; letter-spacing: .3em; margin: 0 0 2mm; }
.org { text-align: center; font-size: 11pt; margin: 0 0 4mm; }
table { width: 100%; border-collapse: collapse; margin: 0 0 3mm; page-break-inside: auto;
  table-layout: fixed; }
.ev th:nth-child(1) { width: 34mm; } .ev th:nth-child(3) { width: 13mm; }
.ev th:nth-child(4) { width: 15mm; } .ev th:nth-child(5) { width: 31mm; }
.ev th:nth-child(6) { width: 17mm; }
.ev td:nth-child(5), .ev td:nth-child(6), .al td:nth-child(1) { white-space: nowrap; }
th, td { font-size: 9.5pt; }
.al th:nth-child(1) { width: 30mm; } .al th:nth-child(2) { width: 22mm; }
.al th:nth-child(3) { width: 22mm; }
tr { page-break-inside: avoid; }
th, td { border: .2mm solid #000; padding: 1mm 1.5mm; text-align: left; vertical-align: top;
  overflow-wrap: anywhere; }
th { background: #eee; font-weight: 600; }
.meta th { width: 22mm; }
h2 { font-size: 12pt; margin: 4mm 0 1.5mm; border-left: 1.2mm solid #000; padding-left: 2mm; }
.none, .more { color: #333; font-style: italic; margin: 0 0 2mm; }
.text { white-space: pre-wrap; border: .2mm solid #000; padding: 2mm; min-height: 12mm; }
.sign { display: grid; grid-template-columns: 1fr 1fr; gap: 6mm; margin-top: 6mm;
  page-break-inside: avoid; }
.sign div { border: .2mm solid #000; padding: 2mm; min-height: 22mm; }
.sign strong { display: block; margin-bottom: 2mm; }
.digest { font-family: monospace; font-size: 7.5pt; word-break: break-all; }
.foot { margin-top: 4mm; font-size: 8pt; color: #333; text-align: right; }
@media screen { body { padding: 10mm; } }
"""


def print_html(report: dict[str, Any], lang: str, settings: Settings, now: int) -> str:
    """The printable report: plain HTML, every value escaped, no script."""
    e = html.escape
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
        return e(p.get("name") or p.get("user") or "") if p else "—"

    def crew(duty: dict[str, Any] | None) -> str:
        if not duty:
            return "—"
        names = "、".join(person(o) for o in duty.get("officers") or [])
        shift = (duty.get("shift_names") or {}).get(lang) or duty.get("shift_name") or ""
        return (f"{e(duty.get('date') or '')} {e(shift)} · {e(t('handover.officers', lang))} "
                f"{names} · {e(t('handover.leader', lang))} {person(duty.get('leader'))}")

    center = settings.center_name_en if lang == "en" else settings.center_name
    parts = [f"""<!DOCTYPE html>
<html lang="{e(lang)}"><head><meta charset="utf-8">
<title>{e(t("handover.print_title", lang))} {e(str(report.get("id")))}</title>
<style>{PRINT_CSS}</style></head><body>
<h1>{e(t("handover.print_title", lang))}</h1>
<p class="org">{e(center)} · {e(str(report.get("id")))} ·
{e(t("handover.state." + str(report.get("state")), lang))}</p>
<table class="meta">
<tr><th>{e(t("handover.window", lang))}</th><td>{e(when(report.get("from")))} —
{e(when(report.get("to")))}</td></tr>
<tr><th>{e(t("handover.outgoing", lang))}</th><td>{crew(report.get("shift"))}</td></tr>
<tr><th>{e(t("handover.incoming", lang))}</th><td>{crew(report.get("incoming"))}</td></tr>
<tr><th>{e(t("handover.author", lang))}</th><td>{e(str(report.get("author_name") or ""))}
({e(str(report.get("author") or ""))}) · {e(t("handover.generated", lang,
                                              time=when(report.get("generated"))))}</td></tr>
</table>"""]
    sections = report.get("sections") or {}
    for name in SECTIONS:
        sec = sections.get(name) or {"items": [], "total": 0, "more": 0}
        parts.append(f"<h2>{e(t('handover.sec.' + name, lang))}（{int(sec.get('total') or 0)}）"
                     "</h2>")
        items = sec.get("items") or []
        if not items:
            parts.append(f'<p class="none">{e(t("handover.none", lang))}</p>')
            continue
        if name == "alarms":
            head = ("col_time", "col_kind", "col_level", "col_text")
            rows = [(when(a.get("ts")), t(f"alert.kind.{a.get('kind')}", lang),
                     level(a.get("severity")), str(a.get("message") or ""))
                    for a in items]
        elif name == "notes":
            head = ("col_time", "col_by", "col_id", "col_text")
            rows = [(when(n.get("ts")), str(n.get("by") or ""),
                     str(n.get("event_id") or n.get("alert_id") or ""), str(n.get("text") or ""))
                    for n in items]
        else:
            head = ("col_id", "col_title", "col_level", "col_status", "col_time", "col_age")
            stamp = "closed" if name == "closed" else "reported"
            rows = [(str(i.get("id")), str(i.get("title") or "")
                     + (f" [{t('handover.overdue_mark', lang)}]" if i.get("overdue") else ""),
                     level(i.get("severity")), t(f"evst.{i.get('status')}", lang),
                     when(i.get(stamp)), dur(i.get("open_s"))) for i in items]
        kind = "al" if name in ("alarms", "notes") else "ev"
        heads = "".join(f"<th>{e(t('handover.' + h, lang))}</th>" for h in head)
        parts.append(f'<table class="{kind}"><tr>{heads}</tr>')
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>")
        parts.append("</table>")
        if sec.get("more"):
            parts.append(f'<p class="more">{e(t("handover.more", lang, n=sec["more"]))}</p>')
    for name in ("summary", "remarks"):
        parts.append(f"<h2>{e(t('handover.' + name, lang))}</h2>"
                     f'<div class="text">{e(str(report.get(name) or ""))}</div>')

    def signature(key: str, label: str) -> str:
        s = report.get(key)
        if not s:
            return (f"<div><strong>{e(t(label, lang))}</strong>"
                    f"{e(t('handover.unsigned', lang))}</div>")
        note = (f"<br>{e(t('handover.note', lang))}: {e(str(s.get('note')))}"
                if s.get("note") else "")
        return (f"<div><strong>{e(t(label, lang))}</strong>{e(str(s.get('name') or ''))} "
                f"({e(str(s.get('by') or ''))})<br>{e(when(s.get('ts')))}{note}"
                f'<br><span class="digest">{e(t("handover.sha", lang))}: '
                f"{e(str(s.get('sha256') or ''))}</span>"
                + (f'<br><span class="digest">{e(t("handover.hmac", lang))}: '
                   f"{e(str(s.get('hmac')))}</span>" if s.get("hmac") else "") + "</div>")

    parts.append('<div class="sign">' + signature("signed", "handover.signed_by")
                 + signature("accepted", "handover.accepted_by") + "</div>")
    check = report.get("intact")
    verdict = "handover.intact" if check else "handover.unverifiable" \
        if report.get("unverifiable") else "handover.tampered"
    state = "" if check is None else t(verdict, lang) + " · "
    parts.append(f'<p class="foot">{e(state)}{e(t("handover.printed", lang, time=when(now)))}'
                 "</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
