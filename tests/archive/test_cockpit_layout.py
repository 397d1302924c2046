"""The cockpit page's server side, without a browser (feature code ck0NN): ck001 who gets the
page, a 403 page or /login, and a scoped leader's `?scope=`; ck002 the layout carries every id
and figure slot the browser glue fills; ck003 the wall header links leaders to the cockpit.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import redis

from layouts import ids

from ..auth_util import client_as, make_app
from ..pages_util import page_text

JS = Path(__file__).resolve().parents[2] / "assets" / "js" / "cc-80-cockpit.js"
TOWN_A, TOWN_B = "370283001", "370283002"


@pytest.fixture
def app(redis_url: str) -> Any:
    return make_app(redis_url)




def layout_of(c: Any, page: str) -> str:
    """The JSON tree the router renders for a page's address (tests/pages_util.py)."""
    return page_text(c, page)


def test_ck001_roles_and_scopes_at_the_page(app: Any, r: redis.Redis) -> None:
    res = client_as(app, r, None).get("/cockpit?scope=370283001")
    assert res.status_code == 302 and res.headers["Location"].startswith("/login?next=")
    for role in ("duty_officer", "display"):
        c = client_as(app, r, role)
        res = c.get("/cockpit")
        assert res.status_code == 403, role
        page = res.get_data(as_text=True)
        assert 'data-reason="role"' in page and "领导驾驶舱仅对领导和指挥长开放" in page
        assert "<script" not in page
        # the page's tree, should the router be asked for it anyway: the refusal
        tree = layout_of(c, "/cockpit")
        assert "cc-ck-denied" in tree and ids.CK_MAP not in tree
    for role in ("leader", "commander"):
        c = client_as(app, r, role)
        assert c.get("/cockpit").status_code == 200
        assert c.get(f"/cockpit?scope={TOWN_B}").status_code == 200
        tree = json.loads(layout_of(c, f"/cockpit?scope={TOWN_B}"))
        assert ids.CK_MAP in json.dumps(tree)
    town = client_as(app, r, "leader", TOWN_A)
    assert town.get(f"/cockpit?scope={TOWN_A}001").status_code == 200
    res = town.get(f"/cockpit?scope={TOWN_B}&lang=en")
    assert res.status_code == 403
    assert 'data-reason="scope"' in res.get_data(as_text=True)
    assert "outside your scope" in res.get_data(as_text=True)
    assert town.get(f"/api/stats?scope={TOWN_B}").status_code == 403
    # the layout says which scope the page may not leave
    tree = layout_of(town, "/cockpit")
    assert re.search(rf'"own":\s*"{TOWN_A}"', tree)


def test_ck002_the_layout_carries_every_slot_the_js_fills(app: Any, r: redis.Redis) -> None:
    tree = layout_of(client_as(app, r, "leader"), "/cockpit")
    flat = tree.replace(" ", "")
    for name in [n for n in ids.as_dict() if n.startswith("CK_")]:
        assert f'"id":"{getattr(ids, name)}"' in flat, name
    text = JS.read_text(encoding="utf-8")
    written = {k for k in re.findall(r"setCk\('([\w.]+)'", text) if not k.endswith(".")}
    written |= {f"{p}.{k}" for p in ("today", "week", "month") for k in ("count", "change",
                                                                          "prev")}
    written |= {f"{g}.{k}" for g in ("workers", "patrol") for k in ("rate", "of")}
    for key in ("open", "overdue", "in_progress", "closed_today"):
        written.add(f"now.{key}")
    for key in ("total", "closed", "overdue", "yellow", "red", "closure_rate",
                "avg_dispatch_s", "avg_arrive_s", "avg_close_s"):
        written.add(f"window.{key}")
    slots = set(re.findall(r'"data-ck":\s*"([\w.]+)"', tree))
    assert written <= slots, written - slots


def test_ck003_the_wall_header_links_leaders_to_the_cockpit(app: Any, r: redis.Redis) -> None:
    for role, linked in (("leader", True), ("commander", True), ("duty_officer", False)):
        tree = layout_of(client_as(app, r, role), "/")
        # (the config store lists every id: look for the element's own)
        assert (f'"id":"{ids.COCKPIT_LINK}"' in tree.replace(" ", "")) is linked, role
        if linked:
            assert re.search(r'"href":\s*"(/|\\u002f)cockpit"', tree), role
    tree = layout_of(client_as(app, r, "leader"), "/cockpit")
    assert re.search(r'"href":\s*"(/|\\u002f)"', tree)  # and back to the wall from the cockpit
