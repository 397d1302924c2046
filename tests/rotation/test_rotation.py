"""Page rotation without a browser (feature code rot0NN): rot001 the spec's syntax and its
refusals; rot002 resolving for a viewer's role and scope, `@towns`; rot003 saved rotations
in Redis; rot004 the API (resolve, save, list, delete, audit, role and scope refused on the
server); rot005 the /rotate pages' gate answers a plain page with the right status; rot006
the router renders the player or the chooser; rot007 pages may be framed by their own origin
only.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from dashboard.access.audit import Audit
from dashboard.city import load_city
from dashboard.errors import Refused
from dashboard.rotation import spec as rot
from dashboard.rotation.saved import ROTATIONS_MAX, Rotations, check_name
from dashboard.store import Store
from layouts import ids

from ..auth_util import XHR, client_as, make_app
from ..pages_util import page_text

TOWN_A, TOWN_B = "370283001", "370283002"
COMMUNITY_A = "370283001001"


@pytest.fixture(scope="module")
def city() -> Any:
    return load_city("pingdu")


@pytest.fixture
def app(redis_url: str) -> Any:
    return make_app(redis_url)




def refused(fn: Any, *args: Any) -> Refused:
    with pytest.raises(Refused) as caught:
        fn(*args)
    return caught.value


def test_rot001_spec_syntax_and_refusals() -> None:
    entries = rot.parse(" wall:60, cockpit ,cockpit@370283001:10,video ", 20)
    assert [e.text() for e in entries] == ["wall:60", "cockpit:20", "cockpit@370283001:10",
                                           "video:20"]
    assert rot.normalise(entries) == "wall:60,cockpit:20,cockpit@370283001:10,video:20"
    assert rot.parse("cockpit@towns")[0].scope == "towns"
    assert rot.parse("wall")[0].seconds == rot.DEFAULT_S
    cases = {
        "": "bad_spec", "   ": "bad_spec", "wall:60,,cockpit": "bad_spec",
        "wall;60": "bad_spec", "WALL:60": "bad_spec", "wall:-5": "bad_spec",
        "duty:30": "unknown_page", "handover": "unknown_page", "wall:4": "bad_interval",
        "video:3601": "bad_interval", "wall@370283001:30": "scope_not_supported",
        "cockpit@abc": "bad_spec", "x" * (rot.SPEC_MAX + 1): "bad_spec",
    }
    for text, code in cases.items():
        exc = refused(rot.parse, text)
        assert (exc.code, exc.status) == (code, 400), text
    exc = refused(rot.parse, "wall:60,cockpit:30,duty:10")
    assert exc.detail == {"index": 2, "entry": "duty:10"} and "entry 3" in exc.message
    assert refused(rot.parse, None).code == "bad_spec"
    assert rot.seconds_arg(None) == rot.DEFAULT_S and rot.seconds_arg("45") == 45
    for bad in ("4", "abc", "1e3", "-10", "3601"):
        assert refused(rot.seconds_arg, bad).code == "bad_interval"


def test_rot002_resolve_for_role_and_scope(city: Any) -> None:
    entries = rot.parse("wall:60,cockpit:30,cockpit@370283001:10,video:15")
    slides = rot.resolve(entries, city, "commander", None)
    assert [(s.page, s.scope, s.seconds, s.path) for s in slides] == [
        ("wall", None, 60, "/"), ("cockpit", None, 30, "/cockpit"),
        ("cockpit", TOWN_A, 10, f"/cockpit?scope={TOWN_A}"), ("video", None, 15, "/video")]
    assert slides[2].name == "凤台街道" and slides[0].name == ""
    # every town of the city for a city-wide viewer; their own area for a town's
    towns = rot.resolve(rot.parse("cockpit@towns:10"), city, "leader", None)
    assert [s.scope for s in towns] == [t.code for t in city.towns] and len(towns) == 17
    own = rot.resolve(rot.parse("wall,cockpit@towns:10"), city, "leader", TOWN_A)
    assert [(s.page, s.scope) for s in own] == [("wall", None), ("cockpit", TOWN_A)]
    # inside the scope: fine; outside, the city's code, or a role without the page: 403
    inside = rot.resolve(rot.parse(f"cockpit@{COMMUNITY_A}"), city, "leader", TOWN_A)
    assert inside[0].scope == COMMUNITY_A
    for spec_text, scope in ((f"cockpit@{TOWN_B}", TOWN_A), ("cockpit@370283", TOWN_A),
                             (f"cockpit@{TOWN_A}", COMMUNITY_A)):
        exc = refused(rot.resolve, rot.parse(spec_text), city, "leader", scope)
        assert (exc.code, exc.status, exc.detail["scope"]) == ("out_of_scope", 403, scope)
    exc = refused(rot.resolve, rot.parse("wall,cockpit"), city, "display", None)
    assert (exc.code, exc.status, exc.detail["index"]) == ("page_not_allowed", 403, 1)
    assert rot.resolve(rot.parse("wall,video"), city, "display", TOWN_A)[1].path == "/video"
    exc = refused(rot.resolve, rot.parse("cockpit@370283999"), city, "commander", None)
    assert (exc.code, exc.status) == ("unknown_scope", 400)
    many = ",".join(["cockpit@towns:5"] * 3)
    assert refused(rot.resolve, rot.parse(many), city, "commander", None).code == \
        "too_many_slides"


def test_rot003_saved_rotations(r: redis.Redis) -> None:
    saved = Rotations(Store(r), clock=lambda: 1_000)
    assert saved.all() == [] and saved.get("城区") is None
    first = saved.save(" 城区 ", "wall:60,cockpit:30", "zhihui")
    assert first == {"name": "城区", "spec": "wall:60,cockpit:30", "by": "zhihui", "ts": 1_000}
    saved.save("A-town", "cockpit@370283001:10", "zhihui")
    saved.save("城区", "wall:30", "li")  # the same name replaces
    assert [x["name"] for x in saved.all()] == ["A-town", "城区"]
    assert saved.get("城区")["spec"] == "wall:30"  # type: ignore[index]
    assert r.hlen("cc:rotations") == 2
    r.hset("cc:rotations", "broken", "{not json")  # a hand-made mess is skipped, not a 500
    assert [x["name"] for x in saved.all()] == ["A-town", "城区"]
    r.hdel("cc:rotations", "broken")
    assert saved.delete("A-town") == "A-town"
    assert refused(saved.delete, "A-town").code == "no_rotation"
    for bad in ("", " ", "a/b", "a?b", "x" * 41, "tab\there", 7):
        assert refused(check_name, bad).code == "bad_name"
    for i in range(ROTATIONS_MAX - 1):
        saved.save(f"r{i}", "wall:30", "z")
    exc = refused(saved.save, "one more", "wall:30", "z")
    assert (exc.code, exc.status) == ("too_many_rotations", 409)
    saved.save("城区", "video:30", "z")  # replacing one still works at the cap


def test_rot004_api_resolves_saves_and_refuses_on_the_server(app: Any, r: redis.Redis) -> None:
    anon = client_as(app, r, None)
    assert anon.get("/api/rotation?p=wall").status_code == 401
    leader = client_as(app, r, "leader")
    res = leader.get("/api/rotation?p=wall:60,cockpit@370283001:10&s=20")
    assert res.status_code == 200
    body = res.get_json()
    assert body["spec"] == "wall:60,cockpit@370283001:10" and body["cycle_s"] == 70
    assert body["slides"][1] == {"page": "cockpit", "scope": TOWN_A, "seconds": 10,
                                 "path": f"/cockpit?scope={TOWN_A}", "name": "凤台街道"}
    bad = leader.get("/api/rotation?p=wall:60,duty:5")
    assert bad.status_code == 400 and bad.get_json() == {
        "error": "entry 2: no page 'duty' to rotate (one of wall, cockpit, video)",
        "code": "unknown_page", "status": 400, "index": 1, "entry": "duty:5"}
    assert leader.get("/api/rotation?p=wall&s=2").get_json()["code"] == "bad_interval"
    assert leader.get("/api/rotation").get_json()["code"] == "bad_spec"
    # a town's leader: their own cockpit yes, another town's or the city's no
    town = client_as(app, r, "leader", TOWN_A)
    assert town.get(f"/api/rotation?p=cockpit@{TOWN_A}").status_code == 200
    far = town.get(f"/api/rotation?p=wall,cockpit@{TOWN_B}")
    assert far.status_code == 403 and far.get_json()["code"] == "out_of_scope"
    display = client_as(app, r, "display")
    assert display.get("/api/rotation?p=wall,cockpit").get_json()["code"] == "page_not_allowed"

    # saving: commanders only, one audit entry per attempt
    commander = client_as(app, r, "commander")
    put = commander.put("/api/rotations/城区", json={"spec": "wall:60, cockpit@towns", "s": 10})
    assert put.status_code == 200, put.get_data(as_text=True)
    assert put.get_json()["spec"] == "wall:60,cockpit@towns:10"
    assert len(put.get_json()["slides"]) == 18
    assert leader.put("/api/rotations/x", json={"spec": "wall"}).status_code == 403
    assert commander.put("/api/rotations/x", json={"spec": "duty"}).status_code == 400
    assert commander.put("/api/rotations/x", json={"spec": "wall", "extra": 1}).status_code == 400
    assert commander.put("/api/rotations/x", data="spec=wall",
                         content_type="application/x-www-form-urlencoded").status_code == 415
    scoped = client_as(app, r, "commander", TOWN_A)
    assert scoped.put("/api/rotations/y", json={"spec": f"cockpit@{TOWN_B}"}).status_code == 403
    listed = leader.get("/api/rotations").get_json()
    assert [x["name"] for x in listed["rotations"]] == ["城区"] and listed["min_s"] == 5
    # opened by a town's leader: the same saved rotation, cut to their own town
    mine = town.get("/api/rotations/城区").get_json()
    assert [(s["page"], s["scope"]) for s in mine["slides"]] == [("wall", None),
                                                                  ("cockpit", TOWN_A)]
    assert display.get("/api/rotations/城区").get_json()["code"] == "page_not_allowed"
    assert leader.get("/api/rotations/nope").status_code == 404
    assert commander.delete("/api/rotations/城区", headers=XHR).get_json() == {"deleted": "城区"}
    assert commander.delete("/api/rotations/城区", headers=XHR).status_code == 404
    entries = Audit(r, "cc:").entries(50)
    outcomes = sorted((e["action"], e["outcome"]) for e in entries
                      if e["action"].startswith("rotation."))
    assert outcomes == [("rotation.delete", "failure"), ("rotation.delete", "success"),
                        ("rotation.save", "denied"), ("rotation.save", "denied"),
                        ("rotation.save", "failure"), ("rotation.save", "failure"),
                        ("rotation.save", "success")]


def test_rot005_the_page_gate_answers_plain_pages(app: Any, r: redis.Redis) -> None:
    anon = client_as(app, r, None)
    res = anon.get("/rotate?p=wall")
    assert res.status_code == 302 and res.headers["Location"].startswith("/login?next=")
    town = client_as(app, r, "leader", TOWN_A)
    assert town.get("/rotate").status_code == 200  # the chooser
    assert town.get(f"/rotate?p=wall,cockpit@{TOWN_A}").status_code == 200
    res = town.get(f"/rotate?p=wall,cockpit@{TOWN_B}:10")
    page = res.get_data(as_text=True)
    assert res.status_code == 403 and 'data-code="out_of_scope"' in page
    assert "该区域超出您账号的范围" in page and f"cockpit@{TOWN_B}:10" in page
    assert "<script" not in page and "Traceback" not in page
    res = town.get("/rotate?p=wall:1&lang=en")
    assert res.status_code == 400 and "An interval is a whole number" in res.get_data(as_text=True)
    assert town.get("/rotate?p=<b>x</b>").get_data(as_text=True).count("<b>") == 0
    assert town.get("/rotate/nothing-here").status_code == 404
    Rotations(Store(r)).save("全市", "wall:60,cockpit:30", "zhihui")
    assert town.get("/rotate/全市").status_code == 200
    assert client_as(app, r, "display").get("/rotate/全市").status_code == 403


def test_rot006_router_renders_player_or_chooser(app: Any, r: redis.Redis) -> None:
    c = client_as(app, r, "commander")
    player = page_text(c, "/rotate?p=wall:60,cockpit:30&s=10&lang=en")
    for name in ("ROT_STAGE", "ROT_BAR", "ROT_WHAT", "ROT_NEXT", "ROT_PAUSE"):
        assert f'"id":"{getattr(ids, name)}"' in player
    assert '"mode":"play"' in player and '"spec":"wall:60,cockpit:30"' in player
    assert '"kinds":["alert"]' in player and "Pause" in player
    named = page_text(c, "/rotate/%E5%85%A8%E5%B8%82")
    assert '"name":"全市"' in named and "暂停" in named
    chooser = page_text(c, "/rotate")
    assert '"mode":"choose"' in chooser and '"canSave":true' in chooser
    assert f'"id":"{ids.ROT_LIST}"' in chooser and f'"id":"{ids.ROT_STAGE}"' not in chooser
    leader_chooser = page_text(client_as(app, r, "leader"), "/rotate")
    assert '"canSave":false' in leader_chooser


def test_rot007_framed_only_by_its_own_origin(app: Any, r: redis.Redis) -> None:
    c = client_as(app, r, "display")
    plain = c.get("/")
    assert "frame-ancestors 'none'" in plain.headers["Content-Security-Policy"]
    assert plain.headers["X-Frame-Options"] == "DENY"
    framed = c.get("/", headers={"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "same-origin"})
    assert "frame-ancestors 'self';" in framed.headers["Content-Security-Policy"]
    assert framed.headers["X-Frame-Options"] == "SAMEORIGIN"
    for site in ("cross-site", "same-site", "none"):
        other = c.get("/", headers={"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": site})
        assert "frame-ancestors 'none'" in other.headers["Content-Security-Policy"], site
