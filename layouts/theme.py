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
