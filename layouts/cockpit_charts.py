"""The cockpit's charts as Plotly figure dicts, from the figures JSON of `GET /api/stats`
(docs/COCKPIT.md): a pure function, so every chart is checked without a browser.

`charts(figures, lang, scale, geo, centroid)` → {name: figure} for the trend, categories,
sources, severity, the area ranking and the density map. Names come from the server (the
city's units) or the translation table; they are escaped, since Plotly reads a few HTML
tags in text. The map is a choropleth over the city's own GeoJSON (`geo`: level → URL,
fetched once by the browser), with no tiles and no base map.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any, Final

from dashboard.i18n import t
from dashboard.models import CATEGORIES, SEVERITIES, SOURCES
from layouts import theme

CHARTS: Final = ("trend", "cats", "srcs", "sev", "areas", "map")
OUTLINE_LEVEL: Final = {"city": "boundary", "town": "town", "community": "community",
                        "grid": "grid"}
MAP_LABELS_MAX: Final = 40  # child units labelled on the map at most (more are unreadable)
BARS_UP_TO: Final = 62  # trend days drawn as bars; a longer range is drawn as lines
AREA_ROWS: Final = 40  # area ranking rows at most (a town's communities); the rest in hover

Centroid = Callable[[str], tuple[float, float] | None]


def _num(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0


def _int(v: Any) -> int:
    return int(_num(v))


def _dict(v: Any) -> Mapping[str, Any]:
    """A part of the figures JSON that should be an object (the page sends it back)."""
    return v if isinstance(v, dict) else {}


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _units(fig: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [k for k in _list(fig.get("children")) if isinstance(k, dict)]


def _text(v: Any) -> str:
    """Text for Plotly: never markup."""
    return html.escape(str(v if v is not None else ""), quote=False)


def unit_name(unit: Mapping[str, Any], lang: str) -> str:
    """A unit's name from the figures JSON in `lang` (`name_en` on an English page, when the
    city's data has one), as Plotly text."""
    en = unit.get("name_en") if lang == "en" else None
    return _text(en or unit.get("name") or unit.get("code"))


def _pct(x: Any) -> str:
    return "–" if not isinstance(x, (int, float)) else f"{round(x * 1000) / 10:.1f}%"


def _layout(scale: float, **extra: Any) -> dict[str, Any]:
    return {"template": theme.chart_template(scale), **extra}


def trend(fig: Mapping[str, Any], lang: str, scale: float) -> dict[str, Any]:
    """Reported and closed per local day of the range: bars up to BARS_UP_TO days, lines
    beyond; labelled MM-DD within one year."""
    tr = _dict(fig.get("trend"))
    days = [str(d) for d in _list(tr.get("days"))]
    total = [_int(v) for v in _list(tr.get("total"))][:len(days)]
    closed = [_int(v) for v in _list(tr.get("closed"))][:len(days)]
    one_year = len({d[:4] for d in days}) <= 1
    x = [d[5:] if one_year else d for d in days]
    c = theme.CHART_COLOURS
    names = (t("ck.trend_total", lang), t("ck.trend_closed", lang))
    hover = "%{customdata} %{fullData.name} %{y}<extra></extra>"
    if len(days) <= BARS_UP_TO:
        traces = [{"type": "bar", "name": n, "x": x, "y": y, "customdata": days,
                   "marker": {"color": col}, "hovertemplate": hover}
                  for n, y, col in zip(names, (total, closed), (c["accent"], c["ok"]),
                                       strict=True)]
    else:
        traces = [{"type": "scatter", "mode": "lines", "name": n, "x": x, "y": y,
                   "customdata": days, "line": {"color": col, "width": 2 * scale},
                   "hovertemplate": hover}
                  for n, y, col in zip(names, (total, closed), (c["accent"], c["ok"]),
                                       strict=True)]
    return {"data": traces, "layout": _layout(
        scale, barmode="group", bargap=0.2, showlegend=True, hovermode="x",
        # the legend on the left: the modebar (PNG) appears top right on hover
        legend={"x": 0, "xanchor": "left", "y": 1.02, "yanchor": "bottom"},
        margin={"l": 6 * scale, "r": 6 * scale, "t": 30 * scale, "b": 4 * scale},
        # a leader drags across days to zoom in on them (double-click: back); never the
        # counts' axis, and no other chart zooms (a click there drills down)
        dragmode="zoom",
        xaxis={"type": "category", "nticks": 8, "tickangle": 0, "fixedrange": False},
        # whole events: a tick per event while they are few, never "0.5"
        yaxis={"rangemode": "tozero", "nticks": 4, "tickformat": ",d",
               **({"dtick": 1} if max([*total, *closed], default=0) <= 4 else {})},
        uirevision=str(fig.get("range")))}


def _hbars(codes: list[str], labels: list[str], values: list[int], colours: Any,
           scale: float, name: str) -> dict[str, Any]:
    """Horizontal bars, first row on top, the value at the end of each bar."""
    top = max(values, default=0)
    return {"data": [{
        "type": "bar", "orientation": "h", "name": name, "y": labels, "x": values,
        "customdata": codes, "marker": {"color": colours},
        "text": [f"{v:,}" for v in values], "textposition": "outside",
        "hovertemplate": "%{y} %{x:,}<extra></extra>",
    }], "layout": _layout(
        scale, bargap=0.3,
        margin={"l": 4 * scale, "r": 4 * scale, "t": 2 * scale, "b": 2 * scale},
        xaxis={"visible": False, "range": [0, max(1, top) * 1.25]},
        yaxis={"autorange": "reversed", "type": "category", "showgrid": False,
               "ticklabelstandoff": round(6 * scale)})}


def mix(counts: Mapping[str, Any] | None, codes: tuple[str, ...], prefix: str, lang: str,
        scale: float, colour: str) -> dict[str, Any]:
    """Events of the range by a fixed code list (category, source), in the list's order."""
    counts = _dict(counts)
    values = [_int(counts.get(code)) for code in codes]
    return _hbars(list(codes), [_text(t(f"{prefix}.{code}", lang)) for code in codes],
                  values, colour, scale, prefix)


def severity(fig: Mapping[str, Any], lang: str, scale: float) -> dict[str, Any]:
    """Events of the range by severity, I (most severe) first, in the severity colours."""
    counts = _dict(fig.get("by_severity"))
    levels = sorted(SEVERITIES)
    labels = [_text(t("sev.level", lang, roman=SEVERITIES[s].roman)) for s in levels]
    return _hbars([str(s) for s in levels], labels, [_int(counts.get(str(s))) for s in levels],
                  [SEVERITIES[s].colour for s in levels], scale, "sev")


def areas(fig: Mapping[str, Any], lang: str, scale: float) -> dict[str, Any]:
    """The child units by events in the range, most first; a unit with overdue events now
    is drawn red. `customdata` is the unit's code: a click drills down."""
    kids = _units(fig)
    kids.sort(key=lambda k: (-_num(k.get("total")), str(k.get("code"))))
    kids = kids[:AREA_ROWS]
    c = theme.CHART_COLOURS
    values = [_int(k.get("total")) for k in kids]
    out = _hbars([str(k.get("code")) for k in kids],
                 [unit_name(k, lang) for k in kids], values,
                 [c["red"] if _int(k.get("overdue")) else c["accent2"] for k in kids],
                 scale, "areas")
    bar = out["data"][0]
    bar["customdata"] = [[str(k.get("code")), _pct(k.get("closure_rate")), _int(k.get("open")),
                          _int(k.get("overdue"))] for k in kids]
    bar["text"] = [f"{v:,}  {_pct(k.get('closure_rate'))}" for v, k in zip(values, kids,
                                                                          strict=True)]
    bar["hovertemplate"] = ("%{y}<br>" + _text(t("ck.total", lang)) + " %{x:,}<br>"
                            + _text(t("ck.closure_rate", lang)) + " %{customdata[1]}<br>"
                            + _text(t("ck.open", lang)) + " %{customdata[2]:,}<br>"
                            + _text(t("ck.overdue", lang)) + " %{customdata[3]:,}<extra></extra>")
    rows = max(1, len(kids))
    small = 0.8 if rows > 24 else 0.9 if rows > 14 else 1.0  # long lists: smaller rows
    out["layout"]["yaxis"]["tickfont"] = {"size": theme.CHART_FONT_PX["tick"] * scale * small}
    bar["textfont"] = {"size": theme.CHART_FONT_PX["value"] * scale * small}
    out["layout"]["xaxis"]["range"] = [0, max(1, max(values, default=0)) * 1.6]
    out["layout"]["uirevision"] = str(_dict(fig.get("scope")).get("code"))
    return out


def density_map(fig: Mapping[str, Any], lang: str, scale: float, geo: Mapping[str, str],
                centroid: Centroid) -> dict[str, Any]:
    """The scope's children shaded by events per km² in the range (relative to the densest),
    the scope's outline on top, names at the children's centres; no base map, no tiles."""
    sc = _dict(fig.get("scope"))
    level, code = str(sc.get("level") or "city"), str(sc.get("code") or "")
    level = level if level in OUTLINE_LEVEL else "city"
    child_level = sc.get("child_level") if sc.get("child_level") in geo else None
    c, px = theme.CHART_COLOURS, theme.CHART_FONT_PX
    kids = _units(fig)
    dens = [_num(k.get("density_km2")) for k in kids]
    top = max(dens, default=0.0)
    unit = _text(t("ck.per_km2", lang))
    traces: list[dict[str, Any]] = []
    if child_level and kids:
        traces.append({
            "type": "choropleth", "name": "density", "geojson": geo[str(child_level)],
            "featureidkey": "properties.code", "locations": [str(k.get("code")) for k in kids],
            "z": dens, "zmin": 0, "zmax": top or 1, "colorscale": theme.DENSITY_SCALE,
            "marker": {"line": {"color": c["edge"], "width": 1.2 * scale}, "opacity": 0.85},
            "customdata": [[unit_name(k, lang), _int(k.get("total")),
                            str(k.get("code"))] for k in kids],
            "hovertemplate": ("%{customdata[0]}<br>%{z:.2f} " + unit + "<br>"
                              + _text(t("ck.total", lang)) + " %{customdata[1]:,}"
                              "<extra></extra>"),
            "colorbar": {"title": {"text": _text(t("ck.map", lang)) + "<br>" + unit,
                                   "font": {"size": px["tick"] * scale, "color": c["text2"]}},
                         "thickness": 12 * scale, "len": 0.45, "x": 1, "xanchor": "right",
                         "y": 0.02, "yanchor": "bottom", "outlinewidth": 0,
                         "tickfont": {"size": px["tick"] * scale, "color": c["text2"]},
                         "bgcolor": "rgba(3,11,23,0.6)"},
        })
    traces.append({
        "type": "choropleth", "name": "outline", "geojson": geo[OUTLINE_LEVEL[level]],
        "featureidkey": "properties.code", "locations": [code], "z": [1],
        "colorscale": [[0, "rgba(27,140,255,0.25)" if not child_level else "rgba(0,0,0,0)"],
                       [1, "rgba(27,140,255,0.25)" if not child_level else "rgba(0,0,0,0)"]],
        "showscale": False, "hoverinfo": "skip",
        "marker": {"line": {"color": c["accent"], "width": 3 * scale}},
    })
    if kids and len(kids) <= MAP_LABELS_MAX:
        spots = [(k, centroid(str(k.get("code")))) for k in kids]
        spots = [(k, p) for k, p in spots if p is not None]
        traces.append({
            "type": "scattergeo", "name": "labels", "mode": "text", "hoverinfo": "skip",
            "lon": [p[0] for _, p in spots], "lat": [p[1] for _, p in spots],
            "text": [unit_name(k, lang)
                     + (f" {_num(k.get('density_km2')):.2f}" if _num(k.get("density_km2"))
                        else "") for k, _ in spots],
            "textfont": {"size": px["map_label"] * scale, "color": c["text"],
                         "family": theme.CHART_FONT},
        })
    return {"data": traces, "layout": _layout(
        scale, margin={"l": 0, "r": 0, "t": 0, "b": 0}, dragmode=False,
        geo={"visible": False, "fitbounds": "locations", "bgcolor": "rgba(0,0,0,0)",
             "projection": {"type": "mercator"}},
        uirevision=code)}


def charts(fig: Mapping[str, Any], lang: str, scale: float, geo: Mapping[str, str],
           centroid: Centroid) -> dict[str, dict[str, Any]]:
    """Every cockpit chart of one figures JSON, by name (CHARTS)."""
    scale = min(4.0, max(0.5, _num(scale) or 1.0))
    c = theme.CHART_COLOURS
    return {
        "trend": trend(fig, lang, scale),
        "cats": mix(_dict(fig.get("by_category")), CATEGORIES, "cat", lang, scale, c["accent"]),
        "srcs": mix(fig.get("by_source"), SOURCES, "src", lang, scale, c["ok"]),
        "sev": severity(fig, lang, scale),
        "areas": areas(fig, lang, scale),
        "map": density_map(fig, lang, scale, geo, centroid),
    }
