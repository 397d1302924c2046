"""The video wall's API (callbacks/video/api.py over dashboard/video/wall.py) on a real
Valkey: roles, validation, the current wall, saved layouts and their cap, focus on an event (cameras
covering first), the `video` frames in the change log and the audit trail.

Decision: a tile may name a camera id the feed has not sent (checked for form only), so a
layout saved today still loads when a camera is renamed or offline for maintenance.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from dashboard.store import Store
from dashboard.video.wall import LAYOUTS_MAX, VideoWall
from layouts import ids

from ..auth_util import XHR, make_user, sign_in
from ..conftest import Stack
from ..pages_util import page_text
from ..units_util import LAT0, LON0, put
from .test_cameras import offset

ORIGIN = (LON0, LAT0)
MUTATIONS = [  # (method, path, body)
    ("put", "/api/video/wall", {"grid": 9}),
    ("post", "/api/video/focus", {"event_id": "E1"}),
    ("put", "/api/video/layouts/早班", {"grid": 4, "tiles": ["C1"]}),
    ("delete", "/api/video/layouts/早班", None),
]
READS = ["/api/video/wall", "/api/video/layouts", "/api/video/cameras?event_id=E1"]


def client_as(stack: Stack, r: redis.Redis, role: str | None, name: str | None = None) -> Any:
    client = stack.app.server.test_client()
    if role is not None:
        sign_in(client, r, role, name)
    return client


def scene(r: redis.Redis) -> None:
    """E1, a level I fire at the origin in grid 370283001001001; cameras around it:
    C-NEAR-COVER 60 m east facing west, C-FAR-COVER 120 m west facing east (both see the
    spot), C-NEAR-AWAY 30 m north facing north (within 500 m, but looking away), C-OUT 800 m
    south (neither), C-RING 200 m east with no heading and a 250 m range (sees all around)."""
    store = Store(r)
    put(store, "event", "E1", *ORIGIN, severity=1, type="fire", title="仓库起火",
        grid_id="370283001001001", community_id="370283001001", town_id="370283001")
    put(store, "event", "E2", *offset(90, 5000, ORIGIN), severity=3, type="dispute",
        grid_id="370283009001001", community_id="370283009001", town_id="370283009")
    cameras = {
        "C-NEAR-COVER": (90, 60, {"heading": 270, "fov": 60, "range_m": 100}),
        "C-FAR-COVER": (270, 120, {"heading": 90, "fov": 40, "range_m": 150}),
        "C-NEAR-AWAY": (0, 30, {"heading": 0, "fov": 60, "range_m": 100}),
        "C-OUT": (180, 800, {}),
        "C-RING": (90, 200, {"range_m": 250}),
    }
    for cid, (bearing, distance, fields) in cameras.items():
        put(store, "camera", cid, *offset(bearing, distance, ORIGIN), name=f"{cid} 路口",
            online=True, stream_type="mjpeg", stream_url=f"http://127.0.0.1:8060/video/{cid}.mjpg",
            **fields)


def video_frames(r: redis.Redis) -> list[tuple[str, dict[str, Any]]]:
    """(op, data) of every `video` frame in the change log, oldest first."""
    return [(f["o"], json.loads(f["d"])) for _, f in r.xrange("cc:log") if f["k"] == "video"]


def video_entries(r: redis.Redis) -> list[dict[str, Any]]:
    return [e for _, e in r.xrange("cc:audit") if e.get("action", "").startswith("video.")]


def video_state(r: redis.Redis) -> dict[str, Any]:
    return {"wall": r.get("cc:video:wall"), "layouts": r.hgetall("cc:video:layouts"),
            "seq": r.get("cc:seq"), "frames": video_frames(r)}


def send(client: Any, method: str, path: str, body: Any) -> Any:
    if body is None:  # no body: the browser glue's header (callbacks/access/security.py)
        return getattr(client, method)(path, headers=XHR)
    if isinstance(body, str):
        return getattr(client, method)(path, data=body, content_type="application/json")
    return getattr(client, method)(path, json=body)


def test_vw001_no_session_401_wrong_role_403_nothing_changed(stack: Stack,
                                                             r: redis.Redis) -> None:
    scene(r)
    VideoWall(Store(r)).save_layout("早班", {"grid": 4, "tiles": ["C-RING"]}, "someone")
    before = video_state(r)
    anonymous = client_as(stack, r, None)
    for method, path, body in MUTATIONS:
        res = send(anonymous, method, path, body)
        assert res.status_code == 401 and res.is_json and res.get_json()["error"], path
    for path in READS:
        assert anonymous.get(path).status_code == 401
    for role in ("leader", "display"):
        client = client_as(stack, r, role)
        for method, path, body in MUTATIONS:
            res = send(client, method, path, body)
            assert res.status_code == 403 and res.is_json, (role, path)
        for path in READS:  # reading is for every signed-in screen
            assert client.get(path).status_code == 200, (role, path)
    assert video_state(r) == before
    denied = [(e["user"], e["action"], json.loads(e["detail"])["status"])
              for e in video_entries(r) if e["outcome"] == "denied"]
    # no session and a display session are refused by the guard in front of every route
    # (callbacks/access/auth.py), as for dispatch; a signed-in role the route refuses is audited
    assert sorted(denied) == sorted(
        ("t-leader", a, 403) for a in ("video.wall", "video.focus", "video.layout.save",
                                       "video.layout.delete"))


def test_vw002_wall_round_trip_frames_and_audit(stack: Stack, r: redis.Redis) -> None:
    scene(r)
    officer = client_as(stack, r, "duty_officer")
    wall = officer.get("/api/video/wall").get_json()
    assert wall == {"grid": 4, "tiles": [], "follow": True, "event_id": None,
                    "focus_ts": None, "by": None, "ts": 0}
    res = officer.put("/api/video/wall", json={"grid": 9, "tiles": ["C-RING", None, "NOT-FED"]})
    assert res.status_code == 200, res.get_json()
    wall = res.get_json()
    # unknown camera ids are kept (checked for form only); trailing empty tiles dropped
    assert wall["grid"] == 9 and wall["tiles"] == ["C-RING", None, "NOT-FED"]
    assert wall["by"] == "t-duty_officer" and wall["ts"] > 0 and wall["follow"] is True
    assert officer.get("/api/video/wall").get_json() == wall
    # a partial change keeps the rest
    again = officer.put("/api/video/wall", json={"follow": False, "event_id": "E1"}).get_json()
    assert again["tiles"] == wall["tiles"] and again["grid"] == 9
    assert again["follow"] is False and again["event_id"] == "E1"
    assert again["focus_ts"] == again["ts"]
    # pinned tiles leave the followed event alone (the other tiles still show it)
    manual = officer.put("/api/video/wall", json={"tiles": ["C-OUT", None, None]}).get_json()
    assert manual["event_id"] == "E1" and manual["tiles"] == ["C-OUT"]
    assert manual["focus_ts"] == again["focus_ts"]
    frames = video_frames(r)
    assert [op for op, _ in frames] == ["upsert"] * 3
    assert [d["id"] for _, d in frames] == ["wall"] * 3
    assert frames[-1][1] == {"id": "wall", **manual}
    assert [(e["action"], e["target"], e["outcome"]) for e in video_entries(r)] == [
        ("video.wall", "wall", "success")] * 3


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), [
    ("put", "/api/video/wall", "{nope", 400, "bad_json"),
    ("put", "/api/video/wall", [9], 400, "bad_json"),
    ("put", "/api/video/wall", {}, 400, "bad_request"),
    ("put", "/api/video/wall", {"grid": 6}, 400, "bad_grid"),
    ("put", "/api/video/wall", {"grid": "4"}, 400, "bad_grid"),
    ("put", "/api/video/wall", {"grid": True}, 400, "bad_grid"),
    ("put", "/api/video/wall", {"tiles": "C1"}, 400, "bad_tiles"),
    ("put", "/api/video/wall", {"tiles": [f"C{i}" for i in range(17)]}, 400,
     "bad_tiles"),
    ("put", "/api/video/wall", {"tiles": ["<script>"]}, 400, "bad_tiles"),
    ("put", "/api/video/wall", {"tiles": [7]}, 400, "bad_tiles"),
    ("put", "/api/video/wall", {"tiles": ["C1", None, "C1"]}, 400, "duplicate_tile"),
    ("put", "/api/video/wall", {"follow": "yes"}, 400, "bad_follow"),
    ("put", "/api/video/wall", {"event_id": "a b"}, 400, "bad_event_id"),
    ("put", "/api/video/wall", {"grid": 4, "colour": "red"}, 400, "bad_request"),
    ("post", "/api/video/focus", {}, 400, "bad_event_id"),
    ("post", "/api/video/focus", {"event_id": "NOPE"}, 404, "no_event"),
    ("put", "/api/video/layouts/" + "长" * 41, {"grid": 4, "tiles": []}, 400, "bad_name"),
    ("put", "/api/video/layouts/a%2Fb", {"grid": 4, "tiles": []}, 400, "bad_name"),
    ("put", "/api/video/layouts/%20%20", {"grid": 4, "tiles": []}, 400, "bad_name"),
    ("put", "/api/video/layouts/ok", {"grid": 4}, 400, "bad_request"),
    ("put", "/api/video/layouts/ok", {"grid": 5, "tiles": []}, 400, "bad_grid"),
    ("delete", "/api/video/layouts/nothing-here", None, 404, "no_layout"),
])
def test_vw003_bad_requests_are_json_errors_and_audited(stack: Stack, r: redis.Redis,
                                                        method: str, path: str, body: Any,
                                                        status: int, code: str) -> None:
    scene(r)
    commander = client_as(stack, r, "commander")
    before = video_state(r)
    res = send(commander, method, path, body)
    assert res.status_code == status and res.is_json
    answer = res.get_json()
    assert answer["code"] == code and answer["error"] and answer["status"] == status
    assert "Traceback" not in res.get_data(as_text=True)
    assert video_state(r) == before
    entries = video_entries(r)
    assert len(entries) == 1 and entries[0]["outcome"] == "failure"
    assert json.loads(entries[0]["detail"])["code"] == code


def test_vw004_layouts_round_trip_and_cap(stack: Stack, r: redis.Redis) -> None:
    commander = client_as(stack, r, "commander")
    assert commander.get("/api/video/layouts").get_json() == {"layouts": []}
    res = commander.put("/api/video/layouts/夜班 主干道", json={"grid": 9, "tiles": [None, "C2"]})
    assert res.status_code == 200
    saved = res.get_json()
    assert saved["name"] == "夜班 主干道" and saved["grid"] == 9 and saved["tiles"] == [None, "C2"]
    assert saved["by"] == "t-commander"
    commander.put("/api/video/layouts/A-morning", json={"grid": 1, "tiles": ["C1"]})
    # the same name again replaces it
    commander.put("/api/video/layouts/A-morning", json={"grid": 4, "tiles": ["C3", "C1"]})
    listed = commander.get("/api/video/layouts").get_json()["layouts"]
    assert [(x["name"], x["grid"], x["tiles"]) for x in listed] == [
        ("A-morning", 4, ["C3", "C1"]), ("夜班 主干道", 9, [None, "C2"])]
    res = commander.delete("/api/video/layouts/A-morning", headers=XHR)
    assert res.status_code == 200 and res.get_json() == {"deleted": "A-morning"}
    assert [x["name"] for x in commander.get("/api/video/layouts").get_json()["layouts"]] == [
        "夜班 主干道"]
    frames = [d for _, d in video_frames(r)]
    assert [(d["id"], d["name"], d["deleted"]) for d in frames] == [
        ("layouts", "夜班 主干道", False), ("layouts", "A-morning", False),
        ("layouts", "A-morning", False), ("layouts", "A-morning", True)]

    # the cap: LAYOUTS_MAX names, then a new name is refused; replacing one still works
    video = VideoWall(Store(r))
    for i in range(LAYOUTS_MAX - 1):
        video.save_layout(f"L{i:03d}", {"grid": 1, "tiles": []}, "t")
    assert r.hlen("cc:video:layouts") == LAYOUTS_MAX
    res = commander.put("/api/video/layouts/one-too-many", json={"grid": 4, "tiles": []})
    assert res.status_code == 409 and res.get_json()["code"] == "too_many_layouts"
    assert r.hlen("cc:video:layouts") == LAYOUTS_MAX
    assert commander.put("/api/video/layouts/L000", json={"grid": 16, "tiles": []}
                         ).status_code == 200
    outcomes = [(e["action"], e["outcome"]) for e in video_entries(r)]
    assert outcomes == [("video.layout.save", "success")] * 3 + [
        ("video.layout.delete", "success"), ("video.layout.save", "failure"),
        ("video.layout.save", "success")]


def test_vw005_focus_orders_cameras_covering_first(stack: Stack, r: redis.Redis) -> None:
    scene(r)
    officer = client_as(stack, r, "duty_officer")
    expected = ["C-NEAR-COVER", "C-FAR-COVER", "C-RING", "C-NEAR-AWAY"]
    res = officer.post("/api/video/focus", json={"event_id": "E1"})
    assert res.status_code == 200, res.get_json()
    body = res.get_json()
    assert body["event_id"] == "E1" and body["cameras"] == expected
    # following (the default): the wall follows it; its tiles (the pinned ones) stay, the
    # others show the cameras on every screen
    wall = officer.get("/api/video/wall").get_json()
    assert wall["tiles"] == [] and wall["event_id"] == "E1"
    assert wall["focus_ts"] == wall["ts"] > 0
    assert body["wall"] == wall
    # the event detail lists the same cameras in the same order (one function)
    detail = officer.get("/api/events/E1").get_json()["nearby"]["cameras"]
    assert [c["id"] for c in detail] == expected
    assert [c["covers"] for c in detail] == [True, True, True, False]
    # the read a following screen makes for a new event
    cams = officer.get("/api/video/cameras?event_id=E1").get_json()
    assert [c["id"] for c in cams["cameras"]] == expected
    assert cams["cameras"][0]["distance_m"] == 60
    op, frame = video_frames(r)[-1]
    assert op == "upsert" and frame["id"] == "focus" and frame["cameras"] == expected
    assert frame["wall"] == wall and frame["by"] == "t-duty_officer"

    # not following: the frame still says which cameras, the wall stays
    officer.put("/api/video/wall", json={"follow": False, "tiles": ["C-OUT"]})
    kept = officer.get("/api/video/wall").get_json()
    body = officer.post("/api/video/focus", json={"event_id": "E1"}).get_json()
    assert body["wall"] is None and body["cameras"] == expected
    assert officer.get("/api/video/wall").get_json() == kept
    frame = video_frames(r)[-1][1]
    assert frame["id"] == "focus" and frame["follow"] is False and frame["wall"] is None
    # an event with no camera near: following, but the wall is not blanked
    officer.put("/api/video/wall", json={"follow": True})
    kept = officer.get("/api/video/wall").get_json()
    body = officer.post("/api/video/focus", json={"event_id": "E2"}).get_json()
    assert body == {"event_id": "E2", "cameras": [], "wall": None}
    assert officer.get("/api/video/wall").get_json() == kept
    assert [(e["action"], e["target"], e["outcome"]) for e in video_entries(r)
            if e["action"] == "video.focus"] == [("video.focus", "E1", "success"),
                                                 ("video.focus", "E1", "success"),
                                                 ("video.focus", "E2", "success")]


def test_vw006_scoped_users_focus_only_inside_their_scope(stack: Stack, r: redis.Redis) -> None:
    scene(r)
    user, password = make_user(r, "commander", "t-scoped", scope="370283009")
    client = stack.app.server.test_client()
    assert client.post("/api/login", json={"username": user, "password": password}
                       ).status_code == 200
    before = video_state(r)
    res = client.post("/api/video/focus", json={"event_id": "E1"})
    # as if unknown (ids do not leak); audited as denied
    assert res.status_code == 404 and res.get_json()["code"] == "no_event"
    assert video_state(r) == before
    assert client.post("/api/video/focus", json={"event_id": "E2"}).status_code == 200
    entries = [(e["target"], e["outcome"]) for e in video_entries(r)]
    assert entries == [("E1", "denied"), ("E2", "success")]


def test_vw007_camera_reads_refuse_bad_input_as_json(stack: Stack, r: redis.Redis) -> None:
    scene(r)
    leader = client_as(stack, r, "leader")
    for query, status in (("", 400), ("?event_id=", 400), ("?event_id=a%20b", 400),
                          ("?event_id=NOPE", 404)):
        res = leader.get("/api/video/cameras" + query)
        assert res.status_code == status and res.is_json and res.get_json()["error"], query
    # a PUT to a path with no such method is a JSON error too
    res = client_as(stack, r, "commander").put("/api/video/layouts", json={})
    assert res.status_code == 405 and res.is_json


@pytest.mark.parametrize(("address", "page"), [
    ("/video", "video"), ("/video/?lang=en", "video"), ("/", "wall"), ("/nope", "wall"),
])
def test_vw008_pages_route_by_the_address_not_the_referer(stack: Stack, r: redis.Redis,
                                                          address: str, page: str) -> None:
    """Dash's `/_dash-layout` is the same shell for every page; the router callback renders
    the page for the address the dcc.Location reports (with its `?lang=`), whatever the
    Referer says, and `cfg.page` tells the browser glue which page it is on."""
    client = client_as(stack, r, "commander")
    shell = client.get("/_dash-layout", headers={"Referer": "http://localhost/video"})
    assert shell.status_code == 200
    assert ids.VW_ROOT not in shell.get_data(as_text=True)  # the Referer changes nothing
    text = page_text(client, address)
    # element ids (the config store also lists every id, as data)
    assert (f'"id":"{ids.VW_ROOT}"' in text) is (page == "video")
    assert (f'"id":"{ids.MAP}"' in text) is (page == "wall")
    assert f'"page":"{page}"' in text
    assert ("Video wall" in text) is ("lang=en" in address)


def test_vw009_controls_only_for_editors(stack: Stack, r: redis.Redis) -> None:
    """The layout itself leaves the assign/save controls out for a session that may not
    use them (the browser test vw103 checks the page)."""
    for role, editor in (("commander", True), ("duty_officer", True), ("leader", False),
                         ("display", False)):
        client = client_as(stack, r, role)
        text = page_text(client, "/video")
        for control in (ids.VW_GRIDS, ids.VW_SIDE, ids.VW_LAYOUT_SAVE, ids.VW_CLEAR_ALL):
            assert (f'"id":"{control}"' in text) is editor, (role, control)
        assert f'"id":"{ids.VW_GRID}"' in text and f'"id":"{ids.VW_FOLLOW}"' in text
        assert f'"canEdit":{"true" if editor else "false"}' in text


def test_vw012_a_wall_stored_before_pinning_keeps_no_focus_tiles(stack: Stack,
                                                                 r: redis.Redis) -> None:
    """A wall written when a focus replaced the tiles: those were the event's cameras, not a
    person's, so they are not read as pinned; a person's tiles (no event) still are."""
    scene(r)
    officer = client_as(stack, r, "duty_officer")
    key = f"{stack.settings.prefix}video:wall"
    old = {"grid": 9, "tiles": ["C-RING", "C-NEAR-COVER"], "follow": True, "event_id": "E1",
           "by": "t-x", "ts": 1234}
    r.set(key, json.dumps(old))
    wall = officer.get("/api/video/wall").get_json()
    assert wall["tiles"] == [] and wall["event_id"] == "E1" and wall["focus_ts"] == 1234
    assert wall["grid"] == 9
    r.set(key, json.dumps({**old, "event_id": None}))
    assert officer.get("/api/video/wall").get_json()["tiles"] == ["C-RING", "C-NEAR-COVER"]


def test_vw013_the_page_names_the_areas_of_the_session_and_the_tour(stack: Stack,
                                                                    r: redis.Redis) -> None:
    """The tiles' captions name towns and communities: a city-wide session gets them all, a
    scoped one its own (and the town its community lies in); the tour's interval too."""
    text = page_text(client_as(stack, r, "commander"), "/video")
    assert '"370283001":"凤台街道"' in text and '"370283002":"李园街道"' in text
    assert f'"tourS":{stack.settings.video_tour_s}' in text
    user, password = make_user(r, "commander", "t-scoped-vw", scope="370283001001")
    client = stack.app.server.test_client()
    client.post("/api/login", json={"username": user, "password": password})
    scoped = page_text(client, "/video")
    assert '"370283001":"凤台街道"' in scoped and '"370283001001":"海口路社区"' in scoped
    assert '"370283002"' not in scoped and '"370283001002"' not in scoped
