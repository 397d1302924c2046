"""The shift handover (dashboard/duty/handover.py, callbacks/duty/handover.py) on a real
Valkey, over the fixed history of tests/fixtures/handover_history.json.

Feature codes: hand001 the draft lists exactly what the fixed history says, section by
section; hand002 `POST /api/handover` drafts the current shift of the roster; hand003 the
state machine draft → signed → accepted (author only edits and signs, another duty officer
accepts, edits refused after signing, 409 on the wrong state, every step audited); hand004
a signed report changed behind the API shows and cannot be accepted; hand005 at most 1000
reports are kept, the oldest dropped; hand006 the printable report escapes every text and
shows both signatures; hand007 events already archived still appear in an old window;
hand008 bad requests get clear JSON errors; hand009 a scoped officer's report holds only
their scope and they cannot read another's.
"""

from __future__ import annotations

from typing import Any

import redis
from flask import Flask

from dashboard.archive.events import Archive, binary_client
from dashboard.config import Settings
from dashboard.duty.handover import SECTIONS, Handovers, draft, pack, unpack
from dashboard.duty.roster import RosterStore
from dashboard.store import Store

from ..auth_util import sign_in
from ..cockpit_util import Clock
from ..handover_util import expected, load_history, window
from .test_roster import api_server


def ids_of(report: dict[str, Any], alert_keys: dict[str, str]) -> dict[str, list[str]]:
    """Each section's listed ids; alerts by their fixture key."""
    by_id = {v: k for k, v in alert_keys.items()}
    out = {}
    for name in SECTIONS:
        items = report["sections"][name]["items"]
        if name == "alarms":
            out[name] = [by_id[a["id"]] for a in items]
        elif name == "notes":
            out[name] = [by_id[n["alert_id"]] for n in items]
        else:
            out[name] = [i["id"] for i in items]
    return out


def check_exact(report: dict[str, Any], keys: dict[str, str]) -> None:
    want, got = expected(), ids_of(report, keys)
    for name in ("opened", "closed", "alarms", "notes", "pending_verification"):
        assert got[name] == want[name], name  # in the order the report lists them
    for name in ("open", "overdue"):
        assert sorted(got[name]) == sorted(want[name]), name
    for name in SECTIONS:
        sec = report["sections"][name]
        assert sec["total"] == len(want[name]) == report["counts"][name] and sec["more"] == 0


def test_hand001_draft_lists_exactly_the_fixed_history(r: redis.Redis) -> None:
    keys = load_history(r)
    lo, hi, now = window()
    report = draft(Store(r), Settings(), lo, hi, now)
    check_exact(report, keys)
    want = expected()
    # the fixture covers every kind of line: nothing is trivially empty
    assert all(want[name] for name in SECTIONS)
    items = {i["id"]: i for i in report["sections"]["open"]["items"]}
    for eid, item in items.items():
        assert item["open_s"] == (now - item["reported"]) // 1000, eid
    assert report["sections"]["closed"]["items"][1]["status"] == "cancelled"
    notes = report["sections"]["notes"]["items"]
    assert [n["by"] for n in notes] == ["zhiban", "zhiban"]


def test_hand002_post_drafts_the_current_shift(r: redis.Redis, redis_url: str) -> None:
    keys = load_history(r)
    lo, hi, now = window()
    client = api_server(r, redis_url, lambda: now).test_client()
    sign_in(client, r, "duty_officer", name="zhiban")
    res = client.post("/api/handover")
    assert res.status_code == 201, res.get_data(as_text=True)
    report = res.get_json()["handover"]
    assert (report["from"], report["to"], report["state"]) == (lo, hi, "draft")
    roster = RosterStore(Store(r), "Asia/Shanghai").get()
    shift, incoming = roster.at(lo), roster.at(hi)
    assert report["shift"]["shift"] == "day" and report["incoming"]["shift"] == "night"
    assert report["shift"]["leader"]["user"] == shift.leader
    assert [o["user"] for o in report["incoming"]["officers"]] == list(incoming.officers)
    assert report["author"] == "zhiban" and report["author_name"] == roster.name_of("zhiban")
    check_exact(report, keys)
    again = client.post("/api/handover")
    assert again.status_code == 409
    assert again.get_json()["code"] == "exists" and again.get_json()["id"] == report["id"]
    listed = client.get("/api/handover").get_json()["handovers"]
    assert [h["id"] for h in listed] == [report["id"]] and "sections" not in listed[0]


def test_hand003_sign_accept_state_machine(r: redis.Redis, redis_url: str) -> None:
    load_history(r)
    _, _, now = window()
    clock = Clock(now)
    server = api_server(r, redis_url, clock)
    out, inc, lead, cmd = (server.test_client() for _ in range(4))
    sign_in(out, r, "duty_officer", name="zhiban")
    sign_in(inc, r, "duty_officer", name="zhiban2")
    sign_in(lead, r, "leader", name="lingdao")
    sign_in(cmd, r, "commander", name="zhihui")
    hid = out.post("/api/handover").get_json()["handover"]["id"]
    url = f"/api/handover/{hid}"
    assert lead.post("/api/handover").status_code == 403  # a leader reads, does not draft
    assert lead.get(url).status_code == 200
    # only the author edits and signs
    assert inc.put(url, json={"remarks": "x"}).get_json()["code"] == "not_author"
    clock.now += 60_000
    res = out.put(url, json={"remarks": "东门积水待复查", "summary": "本班平稳"})
    assert res.status_code == 200
    assert res.get_json()["handover"]["remarks"] == "东门积水待复查"
    assert out.put(url, json={"refresh": True}).status_code == 200
    assert out.post(url + "/accept").get_json()["code"] == "not_signed"
    assert inc.post(url + "/accept").status_code == 409
    assert inc.post(url + "/sign").status_code == 403
    clock.now += 60_000
    signed = out.post(url + "/sign")
    assert signed.status_code == 200
    body = signed.get_json()["handover"]
    assert body["state"] == "signed" and body["intact"] is True
    assert body["signed"]["by"] == "zhiban" and body["signed"]["ts"] == clock.now
    assert len(body["signed"]["sha256"]) == 64
    # frozen: no edit, no second signature
    assert out.put(url, json={"remarks": "改"}).status_code == 409
    assert out.put(url, json={"remarks": "改"}).get_json()["code"] == "not_draft"
    assert out.post(url + "/sign").status_code == 409
    # the author cannot accept their own; a leader is no duty officer
    own = out.post(url + "/accept")
    assert own.status_code == 403 and own.get_json()["code"] == "own_report"
    assert lead.post(url + "/accept").status_code == 403
    clock.now += 60_000
    done = inc.post(url + "/accept", json={"note": "已接班"})
    assert done.status_code == 200
    body = done.get_json()["handover"]
    assert body["state"] == "accepted" and body["accepted"]["by"] == "zhiban2"
    assert body["accepted"]["sha256"] == body["signed"]["sha256"] and body["intact"] is True
    assert body["remarks"] == "东门积水待复查"
    again = cmd.post(url + "/accept")
    assert again.status_code == 409 and again.get_json()["code"] == "accepted"
    entries = [e for e in cmd.get("/api/audit?limit=200").get_json()["entries"]
               if e["action"].startswith("handover.")]
    ok = [(e["action"], e["user"]) for e in reversed(entries) if e["outcome"] == "success"]
    assert ok == [("handover.draft", "zhiban"), ("handover.edit", "zhiban"),
                  ("handover.edit", "zhiban"), ("handover.sign", "zhiban"),
                  ("handover.accept", "zhiban2")]
    refused = [e for e in entries if e["outcome"] in ("failure", "denied")]
    assert len(refused) == 11  # every refusal above, the role check's included


def test_hand004_a_changed_signed_report_shows_and_is_refused(r: redis.Redis,
                                                             redis_url: str) -> None:
    load_history(r)
    _, _, now = window()
    server = api_server(r, redis_url, lambda: now)
    out, inc = server.test_client(), server.test_client()
    sign_in(out, r, "duty_officer", name="zhiban")
    sign_in(inc, r, "duty_officer", name="zhiban2")
    hid = out.post("/api/handover").get_json()["handover"]["id"]
    out.post(f"/api/handover/{hid}/sign")
    key = f"cc:handover:{hid}"
    raw = binary_client(r).get(key)
    assert raw is not None
    stored = unpack(raw)
    stored["sections"]["overdue"]["items"] = []  # someone hides the overdue list
    binary_client(r).set(key, pack(stored))
    assert out.get(f"/api/handover/{hid}").get_json()["handover"]["intact"] is False
    res = inc.post(f"/api/handover/{hid}/accept")
    assert res.status_code == 409 and res.get_json()["code"] == "tampered"


def test_hand005_capped_at_1000_reports(r: redis.Redis) -> None:
    store = Store(r)
    rosters = RosterStore(store, "Asia/Shanghai")
    base = 1_795_564_800_000
    clock = Clock(base + 10_000_000)
    books = Handovers(store, Settings(), rosters.get, clock=clock)
    made = []
    for i in range(1003):
        clock.now += 1000
        made.append(books.create(by="zhiban", from_ms=base + i * 1000,
                                 to_ms=base + i * 1000 + 3600_000)["id"])
    assert r.zcard("cc:handover:index") == 1000
    kept = r.zrange("cc:handover:index", 0, -1)
    assert set(kept) == set(made[3:])
    assert all(books.get(i) is None for i in made[:3])
    assert books.get(made[3]) is not None
    assert len(r.keys("cc:handover:H*")) == 1000 == r.hlen("cc:handover:list")
    assert [h["id"] for h in books.list(2)] == [made[-1], made[-2]]


def test_hand006_print_page_escapes_and_shows_both_signatures(r: redis.Redis,
                                                              redis_url: str) -> None:
    load_history(r)
    _, _, now = window()
    server: Flask = api_server(r, redis_url, lambda: now)
    out, inc = server.test_client(), server.test_client()
    sign_in(out, r, "duty_officer", name="zhiban")
    sign_in(inc, r, "duty_officer", name="zhiban2")
    hid = out.post("/api/handover").get_json()["handover"]["id"]
    out.put(f"/api/handover/{hid}", json={"remarks": "</div><script>alert(3)</script>"})
    out.post(f"/api/handover/{hid}/sign")
    inc.post(f"/api/handover/{hid}/accept", json={"note": "<b>收到</b>"})
    res = inc.get(f"/duty/handover/{hid}/print")
    assert res.status_code == 200 and res.mimetype == "text/html"
    text = res.get_data(as_text=True)
    assert "<script" not in text.lower() and "<b>" not in text and "收到" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;占道停车" in text  # an event's title
    assert "&lt;script&gt;alert(2)&lt;/script&gt;已电话联系本人" in text  # a note
    assert "&lt;/div&gt;&lt;script&gt;alert(3)&lt;/script&gt;" in text  # the remarks
    assert "@page" in text and "A4" in text
    roster = RosterStore(Store(r), "Asia/Shanghai").get()
    report = out.get(f"/api/handover/{hid}").get_json()["handover"]
    for who in ("signed", "accepted"):
        assert roster.name_of(report[who]["by"]) in text
        assert report[who]["sha256"] in text
    assert "default-src 'none'" in res.headers["Content-Security-Policy"]
    # no session: the sign-in page; unknown id: 404
    assert server.test_client().get(f"/duty/handover/{hid}/print").status_code == 302
    assert inc.get("/duty/handover/H-none/print").status_code == 404


def test_hand007_archived_events_still_listed(r: redis.Redis) -> None:
    keys = load_history(r)
    lo, hi, now = window()
    later = now + 3 * 86400_000
    moved = Archive(Store(r), Settings()).run(later)
    assert moved == 3  # H01, H05, H07: closed more than a day before `later`
    assert r.hget("cc:state:event", "H01") is None
    report = draft(Store(r), Settings(), lo, hi, later)
    got = ids_of(report, keys)
    want = expected()
    assert got["opened"] == want["opened"] and got["closed"] == want["closed"]
    archived = {i["id"] for i in report["sections"]["closed"]["items"] if i["archived"]}
    assert archived == {"H01", "H05"}


def test_hand008_bad_requests(r: redis.Redis, redis_url: str) -> None:
    _, _, now = window()
    client = api_server(r, redis_url, lambda: now).test_client()
    assert client.post("/api/handover").status_code == 401
    sign_in(client, r, "duty_officer", name="zhiban")
    cases = [({"from": now, "to": now - 1}, "bad_window"),
             ({"from": now - 25 * 3600_000, "to": now}, "bad_window"),
             ({"from": now + 3600_000, "to": now + 7200_000}, "bad_window"),
             ({"from": "yesterday", "to": now}, "bad_window"),
             ({"from": now - 1000}, "bad_window")]
    for body, code in cases:
        res = client.post("/api/handover", json=body)
        assert res.status_code == 400 and res.get_json()["code"] == code, body
    assert client.post("/api/handover", data="[1]",
                       content_type="application/json").status_code == 400
    assert client.get("/api/handover/H-none").status_code == 404
    assert client.post("/api/handover/H-none/sign").status_code == 404
    assert client.get("/api/handover?limit=abc").status_code == 400
    hid = client.post("/api/handover", json={}).get_json()["handover"]["id"]
    res = client.put(f"/api/handover/{hid}", json={"remarks": 5})
    assert res.status_code == 400 and "remarks" in res.get_json()["error"]
    assert client.put(f"/api/handover/{hid}", json={"other": 1}).status_code == 400
    assert client.put(f"/api/handover/{hid}", json={"remarks": "x" * 4001}).status_code == 400


def test_hand009_scoped_officer_sees_only_the_scope(r: redis.Redis, redis_url: str) -> None:
    from ..auth_util import make_user

    load_history(r)
    _, _, now = window()
    server = api_server(r, redis_url, lambda: now)
    town_b = "370283002"
    user, password = make_user(r, "duty_officer", "zhiban-b", scope=town_b)
    scoped, city = server.test_client(), server.test_client()
    assert scoped.post("/api/login", json={"username": user, "password": password}
                       ).status_code == 200
    sign_in(city, r, "duty_officer", name="zhiban")
    mine = scoped.post("/api/handover").get_json()["handover"]
    ids = {i["id"] for name in ("opened", "closed", "open") for i in
           mine["sections"][name]["items"]}
    assert ids == {"H03", "H04"}  # the events in grid G3 of town B
    assert {a["kind"] for a in mine["sections"]["alarms"]["items"]} == {"geofence_exit"}
    other = city.post("/api/handover").get_json()["handover"]["id"]
    assert scoped.get(f"/api/handover/{other}").status_code == 404  # as if unknown
    assert [h["id"] for h in scoped.get("/api/handover").get_json()["handovers"]] == [mine["id"]]
