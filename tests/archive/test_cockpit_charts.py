"""The cockpit's Plotly figures (layouts/cockpit_charts.py, issue 16) from the figures JSON
of the fixed history, without a browser: ck301 every chart shows the figures' own numbers;
ck302 the map is a choropleth over the city's own GeoJSON with no base map, shaded by
density, outlined and labelled, and drills by unit code; ck303 one dark template, fonts that
grow with the page's scale, the modebar down to the PNG button (and the map's zoom); ck304
names are text, never markup, and a malformed figures JSON gives empty charts, not an error;
ck305 the callback that draws them answers the page's store (through Dash's own endpoint).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import plotly.graph_objects as go
import pytest
import redis

from dashboard.city import load_city
from dashboard.config import Settings
from dashboard.models import CATEGORIES, SOURCES
from layouts import ids, theme
from layouts.cockpit_charts import CHARTS, MAP_LABELS_MAX, charts

from ..cockpit_util import load_history, now_ms
from .test_stats import client_for, figures_of

GEO = {level: f"/geo/{level}.geojson" for level in theme.BOUNDARY_LEVELS}
TOWN_A = "370283001"


@pytest.fixture
def history(r: redis.Redis) -> dict[str, Any]:
    return load_history(r)


def centroids() -> Any:
    city = load_city()
    return {u.code: u.centroid for u in (*city.towns, *city.communities, *city.grids)}.get


def draw(fig: dict[str, Any], lang: str = "zh-CN", scale: float = 1.0) -> dict[str, Any]:
    out = charts(fig, lang, scale, GEO, centroids())
    for name, figure in out.items():  # every one is a valid Plotly figure
        go.Figure(figure)
        assert json.dumps(figure), name
    return out


def test_ck301_every_chart_shows_the_figures(r: redis.Redis, history: dict[str, Any]) -> None:
    fig = figures_of(r).figures(None, now_ms())
    out = draw(fig)
    assert tuple(out) == CHARTS
    trend = out["trend"]["data"]
    assert [t["type"] for t in trend] == ["bar", "bar"]
    assert [t["name"] for t in trend] == ["受理", "办结"]
    assert trend[0]["customdata"] == fig["trend"]["days"]
    assert trend[0]["x"] == [d[5:] for d in fig["trend"]["days"]]  # MM-DD within a year
    assert trend[0]["y"] == fig["trend"]["total"] and trend[1]["y"] == fig["trend"]["closed"]
    for name, counts, codes in (("cats", fig["by_category"], CATEGORIES),
                                ("srcs", fig["by_source"], SOURCES)):
        bar = out[name]["data"][0]
        assert bar["customdata"] == list(codes)
        assert bar["x"] == [counts.get(c, 0) for c in codes]
        assert sum(bar["x"]) == fig["window"]["total"]
    sev = out["sev"]["data"][0]
    assert sev["y"] == ["I级", "II级", "III级", "IV级"]
    assert sev["x"] == [fig["by_severity"].get(s, 0) for s in ("1", "2", "3", "4")]
    areas = out["areas"]["data"][0]
    kids = sorted(fig["children"], key=lambda c: (-c["total"], c["code"]))
    assert [cd[0] for cd in areas["customdata"]] == [c["code"] for c in kids]
    assert areas["x"] == [c["total"] for c in kids] and areas["y"] == [c["name"] for c in kids]
    # a unit with overdue events now is red, the others blue
    assert areas["marker"]["color"] == [theme.CHART_COLOURS["red"] if c["overdue"]
                                        else theme.CHART_COLOURS["accent2"] for c in kids]
    # a long range is drawn as lines
    long = figures_of(r).figures(None, now_ms(), figures_of(r).span("year", None, None,
                                                                   now_ms()))
    assert [t["type"] for t in draw(long)["trend"]["data"]] == ["scatter", "scatter"]
    assert draw(fig, "en")["trend"]["data"][0]["name"] == "Reported"


def test_ck302_the_map_is_a_choropleth_over_the_citys_geojson(
        r: redis.Redis, history: dict[str, Any]) -> None:
    city = load_city()
    fig = figures_of(r).figures(None, now_ms())
    the_map = draw(fig)["map"]
    shade, outline, labels = the_map["data"]
    assert shade["type"] == "choropleth" and shade["geojson"] == "/geo/town.geojson"
    assert shade["featureidkey"] == "properties.code"
    assert shade["locations"] == [c["code"] for c in fig["children"]]
    assert shade["z"] == [c["density_km2"] for c in fig["children"]]
    assert shade["zmin"] == 0 and shade["zmax"] == max(shade["z"])
    assert [cd[2] for cd in shade["customdata"]] == shade["locations"]  # the drill's code
    assert outline["geojson"] == "/geo/boundary.geojson" and outline["locations"] == ["370283"]
    assert outline["hoverinfo"] == "skip"
    assert labels["type"] == "scattergeo" and labels["hoverinfo"] == "skip"
    town = city.unit(TOWN_A)
    assert town is not None
    i = shade["locations"].index(TOWN_A)
    assert (labels["lon"][i], labels["lat"][i]) == town.centroid
    geo = the_map["layout"]["geo"]
    assert geo["visible"] is False and geo["fitbounds"] == "locations"  # no base map, no tiles
    # a town: its communities, outlined by the town; a grid: its own shape, nothing below
    town_fig = draw(figures_of(r).figures(TOWN_A, now_ms()))["map"]["data"]
    assert town_fig[0]["geojson"] == "/geo/community.geojson"
    assert town_fig[1]["geojson"] == "/geo/town.geojson"
    grid = city.grids[0].code
    grid_fig = draw(figures_of(r).figures(grid, now_ms()))["map"]["data"]
    assert [t["name"] for t in grid_fig] == ["outline"] and grid_fig[0]["locations"] == [grid]
    # more children than can be read: no labels
    many = {**fig, "children": [{**fig["children"][0], "code": f"X{i}"}
                                for i in range(MAP_LABELS_MAX + 1)]}
    assert [t["name"] for t in draw(many)["map"]["data"]] == ["density", "outline"]


def test_ck303_one_dark_template_large_type_and_a_plain_modebar(
        r: redis.Redis, history: dict[str, Any]) -> None:
    fig = figures_of(r).figures(None, now_ms())
    at_1080, at_4k = draw(fig, scale=1.0), draw(fig, scale=2.0)
    for name in CHARTS:
        tpl = at_1080[name]["layout"]["template"]
        assert tpl == theme.chart_template(1.0), name
        assert tpl["layout"]["paper_bgcolor"] == "rgba(0,0,0,0)"  # the wall's panels show
        assert tpl["layout"]["font"]["color"] == theme.CHART_COLOURS["text"]
        assert tpl["layout"]["font"]["size"] >= 15  # five metres from a 1080-line wall
        assert at_4k[name]["layout"]["template"]["layout"]["font"]["size"] == \
            2 * tpl["layout"]["font"]["size"]
    assert at_4k["map"]["data"][2]["textfont"]["size"] == 2 * at_1080["map"]["data"][2][
        "textfont"]["size"]
    config = theme.chart_config("trend", "/assets/topojson/")
    assert config["displaylogo"] is False and config["displayModeBar"] == "hover"
    assert config["toImageButtonOptions"] == {"format": "png", "filename": "cockpit-trend"}
    assert "toImage" not in config["modeBarButtonsToRemove"]
    assert {"lasso2d", "select2d", "zoom2d", "pan2d"} <= set(config["modeBarButtonsToRemove"])
    assert config["topojsonURL"] == "/assets/topojson/"  # never Plotly's CDN


def test_ck304_names_are_text_and_bad_input_draws_empty_charts() -> None:
    fig = {"scope": {"code": "370283", "level": "city", "child_level": "town"},
           "children": [{"code": "370283001", "name": "<b>x</b><a href='javascript:1'>y</a>",
                         "total": 2, "density_km2": 0.5, "overdue": 0, "closure_rate": None}],
           "by_category": {"accident": "many"}, "trend": {"days": ["2026-11-25"],
                                                          "total": [None], "closed": []}}
    out = draw(fig)
    name = out["areas"]["data"][0]["y"][0]
    assert "<" not in name and "&lt;b&gt;" in name
    assert "<" not in out["map"]["data"][0]["customdata"][0][0]
    assert out["cats"]["data"][0]["x"][CATEGORIES.index("accident")] == 0
    assert out["trend"]["data"][0]["y"] == [0]
    for junk in ({}, {"scope": "x", "children": "y", "trend": None},
                 {"scope": {"level": "planet", "child_level": "moon"}, "children": [1, None]}):
        assert set(draw(junk)) == set(CHARTS)


def test_ck305_the_callback_draws_the_charts_from_the_store(redis_url: str,
                                                            r: redis.Redis) -> None:
    from app import create_app

    load_history(r)
    app = create_app(dataclasses.replace(Settings(), redis_url=redis_url))
    leader = client_for(app, r, "leader")
    fig = leader.get("/api/stats").json
    outputs = [{"id": box, "property": "figure"} for box in
               (ids.CK_MAP, ids.CK_TREND, ids.CK_CATS, ids.CK_SRCS, ids.CK_SEV,
                ids.CK_CHILDREN)]
    body = {"output": ".." + "...".join(f"{o['id']}.figure" for o in outputs) + "..",
            "outputs": outputs,
            "inputs": [{"id": ids.CK_DATA, "property": "data",
                        "value": {"fig": fig, "key": "k1", "lang": "en", "scale": 2}}],
            "changedPropIds": [f"{ids.CK_DATA}.data"], "state": []}
    res = leader.post("/_dash-update-component", json=body)
    assert res.status_code == 200, res.get_data(as_text=True)[:300]
    drawn = res.json["response"]
    trend = drawn[ids.CK_TREND]["figure"]
    assert trend["data"][0]["name"] == "Reported" and trend["layout"]["meta"] == {"key": "k1"}
    assert trend["data"][0]["y"] == fig["trend"]["total"]
    assert drawn[ids.CK_MAP]["figure"]["data"][0]["geojson"].endswith("/geo/town.geojson")
    # nothing to draw from: nothing is updated
    body["inputs"][0]["value"] = None
    assert leader.post("/_dash-update-component", json=body).status_code == 204
