"""Presentation constants shared by the layout and the browser glue (via the config store)."""

from __future__ import annotations

from typing import Final

from dashboard.models import SEVERITIES

# Units are drawn in hues no severity uses, so a unit is never read as an alarm.
WORKER_COLOURS: Final = {
    "on_duty": "#2ee6a8",
    "busy": "#26c6da",
    "off_duty": "#546374",
    "sos": "#ff1744",
}
RESOURCE_COLOURS: Final = {
    "available": "#9d7bff",
    "dispatched": "#e040fb",
    "en_route": "#e040fb",
    "on_scene": "#ff6fd8",
    "returning": "#7e57c2",
    "unavailable": "#4b4860",
}
CAMERA_COLOURS: Final = {"online": "#7fb2e0", "offline": "#3a4756"}

# Legend swatch per toggleable layer.
LAYER_SWATCH: Final = {
    "worker": WORKER_COLOURS["on_duty"],
    "resource": RESOURCE_COLOURS["available"],
    "camera": CAMERA_COLOURS["online"],
}
LAYERS: Final = ("worker", "resource", "camera")

# Boundary levels, coarse to fine, and the zoom from which each is drawn.
BOUNDARY_LEVELS: Final = ("boundary", "town", "community", "grid", "microgrid")
BOUNDARY_MIN_ZOOM: Final = {"boundary": 0, "town": 0, "community": 12, "grid": 14, "microgrid": 16}
LABEL_MIN_ZOOM: Final = {"town": 0, "community": 13}
# Unit layers drawn only from a zoom on. Cameras are clustered at city scale (the count and
# the offline share per cell say something), so they show at every zoom.
LAYER_MIN_ZOOM: Final = {"worker": 0, "resource": 0, "camera": 0}

# The camera layer (assets/js/cc-12-cameras.js): one canvas, grid clusters of cellPx × the
# type scale when zoomed out, one icon per camera from iconZoom on (or alone in a cell);
# feed changes redraw it at most every redrawMs.
CAMERA_LAYER: Final = {
    "cellPx": 60,
    "iconZoom": 15,
    "redrawMs": 1000,
    "cluster": "#10304f",
    "offlineArc": "#b0bec5",
    "offlineEdge": "#8a96a3",
    "selected": "#ffffff",
    "text": "#e6f2ff",
    "selectionMax": 5000,  # ids kept in a map selection (the card lists the first few)
}

# Pingdu's centre, until the boundary has loaded and the map fits it.
MAP_CENTER: Final = (36.78, 119.95)
MAP_ZOOM: Final = 9.5

# Memory bounds for weeks of uptime (see assets/js/cc-20-state.js).
LIMITS: Final = {
    "events": 5000,
    "units": 20000,
    # a city's camera catalogue (Bao'an runs 42,000 channels); cameras are one canvas
    "cameras": 60000,
    "closedKeepMs": 24 * 3600 * 1000,
    "listRows": 30,
    "listPinned": 8,
    "listHz": 4,
    "appliedAt": 2000,
}
# The map drifts back to the whole city after this long untouched (0: never).
IDLE_RETURN_S: Final = 180
# Width of the event panel (rem, matches assets/css/command.css): a selected event is
# centred in the map area the panel leaves free.
DETAIL_WIDTH_REM: Final = 35.8

# The event panel (assets/js/cc-60-command.js … cc-65-alerts.js).
COMMAND: Final = {
    # A level I/II event arriving live opens the panel, unless the commander used the panel
    # for another event within lockS seconds (or has a form open, or the last auto-opened
    # event has not had lockS on screen): then it waits as a flashing chip in the panel head
    # and takes over once the panel has been left alone. A flood never flips the panel.
    "lockS": 45,
    "settleMs": 400,  # urgent arrivals this close together are one burst
    "floodN": 3,  # a burst bigger than this is a flood: counted on the chip, no auto-open
    "closeGraceMs": 5000,  # after the commander closes the panel, a waiting event holds off
    "pendingMax": 8,
    "nearbyRows": 8,  # units listed (nearest first); the ring reaches the farthest listed
    "planRows": 3,
    "stepRows": 6,
    "timelineRows": 6,
    "altPerCall": 3,  # other candidates offered per resource call in the proposal
    "refreshMs": 1500,  # an open panel re-reads its event at most this often on changes
    "tasksMax": 3000,  # tasks kept in the browser (open ones, plus recent closed)
    "alertsMax": 200,  # open alerts kept; the strip shows alertRows of them
    "alertRows": 3,
    "dispatchTimes": 200,  # click-to-dispatched samples kept for bench/dispatch_click.py
}

# Newest-data age (seconds) beyond which the header turns amber, then red.
STALE_S: Final = {"amber": 30, "red": 120}


def severity_config() -> dict[str, dict[str, str]]:
    return {str(s.level): {"colour": s.colour, "roman": s.roman} for s in SEVERITIES.values()}


# The cockpit's charts (layouts/cockpit_charts.py): the wall's colours (assets/css/wall.css)
# as the one Plotly template every cockpit figure uses. Sizes are px at 1920×1080 and are
# multiplied by the page's scale (root font-size / 16), as the CSS's rem are.
CHART_COLOURS: Final = {
    "text": "#e3f1ff", "text2": "#9fc0e0", "text3": "#6786a8", "accent": "#38d8ff",
    "accent2": "#1b8cff", "ok": "#2ee6a8", "amber": "#ffb300", "red": "#ff3d3d",
    "grid": "rgba(56, 170, 255, 0.14)", "line": "rgba(56, 170, 255, 0.32)",
    "hover": "rgba(6, 20, 40, 0.95)", "edge": "#7fd6ff",
}
CHART_FONT: Final = ('"Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", '
                     '"Microsoft YaHei", sans-serif')
# Readable at five metres: tick labels as large as the panels' body text (1rem), values on
# bars and hover labels larger.
CHART_FONT_PX: Final = {"base": 15, "tick": 15, "value": 16, "hover": 18, "map_label": 14}
# density ramp, none → densest child: dark blue → cyan → amber → red (as the map was)
DENSITY_SCALE: Final = ((0.0, "rgb(22,58,110)"), (0.35, "rgb(26,150,220)"),
                        (0.7, "rgb(255,179,0)"), (1.0, "rgb(255,61,61)"))
# The modebar: only a PNG of the chart and, on the map, zoom in/out and reset; it shows on
# hover so nothing covers a figure on an unattended wall.
MODEBAR_REMOVE: Final = (
    "zoom2d", "pan2d", "select2d", "lasso2d", "zoomIn2d", "zoomOut2d", "autoScale2d",
    "resetScale2d", "hoverClosestCartesian", "hoverCompareCartesian", "toggleSpikelines",
    "pan", "hoverClosestGeo", "select", "lasso",
)


def chart_template(scale: float = 1.0) -> dict[str, object]:
    """The cockpit's dark Plotly template at a page scale (1 at 1080 lines, 2 at 2160)."""
    c, px = CHART_COLOURS, CHART_FONT_PX
    axis = {"gridcolor": c["grid"], "linecolor": c["line"], "zerolinecolor": c["line"],
            "tickfont": {"size": px["tick"] * scale, "color": c["text2"]},
            "automargin": True, "fixedrange": True, "showspikes": False}
    return {
        "layout": {
            "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
            "font": {"family": CHART_FONT, "size": px["base"] * scale, "color": c["text"]},
            "colorway": [c["accent"], c["ok"], c["amber"], c["accent2"], c["red"]],
            "hoverlabel": {"bgcolor": c["hover"], "bordercolor": c["accent"],
                           "font": {"family": CHART_FONT, "size": px["hover"] * scale,
                                    "color": c["text"]}},
            "xaxis": axis, "yaxis": axis,
            "legend": {"font": {"size": px["tick"] * scale, "color": c["text2"]},
                       "bgcolor": "rgba(0,0,0,0)", "orientation": "h"},
            "bargap": 0.25, "showlegend": False,
            "margin": {"l": 4 * scale, "r": 4 * scale, "t": 4 * scale, "b": 4 * scale},
        },
        "data": {
            # values keep their size (Plotly would shrink a label that nears the edge)
            "bar": [{"marker": {"line": {"width": 0}}, "constraintext": "none",
                     "textfont": {"size": px["value"] * scale, "color": c["text"]},
                     "cliponaxis": False}],
        },
    }


def chart_config(name: str, topojson_url: str) -> dict[str, object]:
    """dcc.Graph's config: the PNG button named after the chart, nothing from a CDN (the
    map's base topology comes from `topojson_url`, an empty one: no tiles, no world)."""
    return {"displaylogo": False, "responsive": True, "scrollZoom": False,
            "displayModeBar": "hover",
            "modeBarButtonsToRemove": list(MODEBAR_REMOVE),
            "toImageButtonOptions": {"format": "png", "filename": f"cockpit-{name}"},
            "topojsonURL": topojson_url, "doubleClick": "reset"}
