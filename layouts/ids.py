"""Every component id of the wall, in one place: layouts, callbacks, JS and tests share them.

The browser gets these through the config store (`ids` key), so JS never hard-codes an id.
"""

from __future__ import annotations

from typing import Final

# The app's one layout (layouts/pages.py): the address, and where the page is rendered
URL: Final = "cc-url"  # dcc.Location
PAGE: Final = "cc-page"  # the page for the address, rendered by the router callback
ROOT: Final = "cc-root"
CONFIG: Final = "cc-config"  # dcc.Store: everything the JS needs (ws URL, strings, colours, ids)
BOOTED: Final = "cc-booted"  # dcc.Store: set by the boot clientside callback
SELECTED: Final = "cc-selected"  # dcc.Store: id of the selected event (set from JS)

# Header
CENTER_NAME: Final = "cc-center-name"
CLOCK_TIME: Final = "cc-clock-time"
CLOCK_DATE: Final = "cc-clock-date"
CONN: Final = "cc-conn"
CONN_TEXT: Final = "cc-conn-text"
DATA_AGE: Final = "cc-data-age"
DATA_AGE_TEXT: Final = "cc-data-age-text"
LANG_LINK: Final = "cc-lang"
USER_BOX: Final = "cc-user"  # who is signed in + the sign-out button
USER_NAME: Final = "cc-user-name"
SIGN_OUT: Final = "cc-sign-out"

# KPI values (text set from JS)
KPI_TODAY: Final = "cc-kpi-today"
KPI_OPEN: Final = "cc-kpi-open"
KPI_IN_PROGRESS: Final = "cc-kpi-in-progress"
KPI_CLOSED: Final = "cc-kpi-closed"
KPI_WORKERS: Final = "cc-kpi-workers"
KPI_RATE: Final = "cc-kpi-rate"


def kpi_severity(level: int) -> str:
    """The KPI value holding today's count of one severity level."""
    return f"cc-kpi-sev-{level}"


# Bar charts: one row per code, `bar_row(group, code)`; group is "cat" or "src".
BARS_CATEGORY: Final = "cc-bars-cat"
BARS_SOURCE: Final = "cc-bars-src"


def bar_row(group: str, code: str) -> str:
    return f"cc-bar-{group}-{code}"


# Live list
EVENT_LIST: Final = "cc-event-list"
EVENT_COUNT: Final = "cc-event-count"

# Map and its overlays
MAP: Final = "cc-map"
MAP_INFO: Final = "cc-map-info"
LEGEND: Final = "cc-legend"
LAYER_TOGGLES: Final = "cc-layer-toggles"
DETAIL: Final = "cc-detail"
DETAIL_CLOSE: Final = "cc-detail-close"
DETAIL_CHIP: Final = "cc-detail-chip"
# In grid order: two key/value pairs per row; the last three span the panel (command.css).
DETAIL_FIELDS: Final = (
    "title", "type", "category", "severity", "status", "source", "reporter", "reported", "age",
    "area", "grid", "gridworker", "address", "description",
)

# The event panel's command-loop sections (assets/js/cc-60…cc-65 fill them)
CMD_PENDING: Final = "cc-cmd-pending"  # "new urgent events" chip in the panel head
CMD_BODY: Final = "cc-cmd-body"  # loop, nearby, plans, timeline (hidden under the proposal)
CMD_TASK: Final = "cc-cmd-task"  # task id, who dispatched, override reason
CMD_STAGES: Final = "cc-cmd-stages"  # the stepper dispatched → … → closed
CMD_ASSIGNEES: Final = "cc-cmd-assignees"
CMD_VERIFY_BOX: Final = "cc-cmd-verify"
CMD_VERIFY_NOTE: Final = "cc-cmd-verify-note"
CMD_EVAL_BOX: Final = "cc-cmd-eval"
CMD_EVAL_NOTE: Final = "cc-cmd-eval-note"
CMD_NEARBY: Final = "cc-cmd-nearby"
CMD_PLANS: Final = "cc-cmd-plans"
CMD_STEPS: Final = "cc-cmd-steps"
CMD_TIMELINE: Final = "cc-cmd-timeline"
CMD_FOOT: Final = "cc-cmd-foot"
CMD_DISPATCH: Final = "cc-cmd-dispatch"
CMD_MSG: Final = "cc-cmd-msg"
CMD_PROPOSAL: Final = "cc-cmd-proposal"
CMD_PROPOSAL_HEAD: Final = "cc-cmd-proposal-head"
CMD_PROPOSAL_UNITS: Final = "cc-cmd-proposal-units"
CMD_FIELDS: Final = "cc-cmd-fields"  # holds the three inputs below (made by the browser)
CMD_NO_PLAN: Final = "cc-cmd-no-plan"
CMD_OVERRIDE: Final = "cc-cmd-override"
CMD_NOTE: Final = "cc-cmd-note"
CMD_CONFIRM: Final = "cc-cmd-confirm"
CMD_CANCEL: Final = "cc-cmd-cancel"
CMD_PROPOSAL_HINT: Final = "cc-cmd-proposal-hint"

# Alerts (the strip above the event list)
ALERTS: Final = "cc-alerts"
ALERT_COUNT: Final = "cc-alert-count"
ALERT_MORE: Final = "cc-alert-more"

# Video: the event panel's live tiles (issue 4)
VIDEO_TILES: Final = "cc-video-tiles"

# Map camera layer and selection tools (issue 4)
CAM_TOOLS: Final = "cc-cam-tools"

# The video wall page /video (issue 4)
VW_ROOT: Final = "cc-vw-root"
VW_STAGE: Final = "cc-vw-stage"  # the tool bar and the tiles
VW_GRID: Final = "cc-vw-grid"  # the tiles (made by the browser glue), data-grid = 1/4/9/16
VW_GRIDS: Final = "cc-vw-grids"  # the 1/4/9/16 buttons (editors only)
VW_FOLLOW: Final = "cc-vw-follow"  # follow toggle (editors) or indicator (viewers)
VW_CLEAR_ALL: Final = "cc-vw-clear-all"
VW_EVENT: Final = "cc-vw-event"  # the event the tiles show
VW_MSG: Final = "cc-vw-msg"
VW_BACK: Final = "cc-vw-back"  # link to the wall
VW_SIDE: Final = "cc-vw-side"  # cameras and layouts (editors only)
VW_SEARCH_BOX: Final = "cc-vw-search-box"
VW_SEARCH: Final = "cc-vw-search"  # made by the browser glue (a plain input)
VW_CAM_COUNT: Final = "cc-vw-cam-count"
VW_CAMS: Final = "cc-vw-cams"
VW_LAYOUT_FORM: Final = "cc-vw-layout-form"
VW_LAYOUT_NAME: Final = "cc-vw-layout-name"  # made by the browser glue
VW_LAYOUT_SAVE: Final = "cc-vw-layout-save"
VW_LAYOUTS: Final = "cc-vw-layouts"


# The executive cockpit /cockpit (issue 5)
CK_ROOT: Final = "cc-ck-root"
CK_CRUMBS: Final = "cc-ck-crumbs"  # the breadcrumb: city › town › community › grid
CK_SCOPE: Final = "cc-ck-scope"  # the scope's name, large
CK_MSG: Final = "cc-ck-msg"  # an error from the API (refused scope, network)
CK_PERIODS: Final = "cc-ck-periods"  # today / week / month against the period before
CK_NOW: Final = "cc-ck-now"  # open, overdue, in progress, closed today
CK_WINDOW: Final = "cc-ck-window"  # the time range: total, closed, closure rate, cards
CK_TIMES: Final = "cc-ck-times"  # average time to dispatch, arrive, close
CK_WORKERS: Final = "cc-ck-workers"  # online rate, patrol coverage
CK_MAP: Final = "cc-ck-map"  # dcc.Graph: choropleth of density per child unit (click: drill)
CK_TREND: Final = "cc-ck-trend"  # dcc.Graph: reported and closed per day of the range
CK_CHILDREN: Final = "cc-ck-children"  # dcc.Graph: the child units' bars (click: drill down)
CK_SEV: Final = "cc-ck-sev"  # dcc.Graph: events of the range by severity
CK_DATA: Final = "cc-ck-data"  # store: the figures JSON the charts are drawn from
CK_CLICK: Final = "cc-ck-click"  # store: the last chart click that drilled down
CK_RANGE: Final = "cc-ck-range"  # the time-range picker (today, 7 d, 30 d, year, custom)
CK_CUSTOM: Final = "cc-ck-custom"  # its from–to box
CK_APPLY: Final = "cc-ck-apply"
CK_EXPORT: Final = "cc-ck-export"  # the export links of the scope and range shown
CK_CHILD_TITLE: Final = "cc-ck-child-title"
CK_RANK_RATE: Final = "cc-ck-rank-rate"  # ranked by closure rate
CK_RANK_OVERDUE: Final = "cc-ck-rank-overdue"  # ranked by overdue count
CK_CATS: Final = "cc-ck-cats"  # dcc.Graph
CK_SRCS: Final = "cc-ck-srcs"  # dcc.Graph
CK_UPDATED: Final = "cc-ck-updated"  # when the figures were computed
COCKPIT_LINK: Final = "cc-cockpit-link"  # the wall header's link to /cockpit

# The duty desk /duty (issue 5)
DUTY_ROOT: Final = "cc-duty-root"  # data-sounding, data-beeps, data-audio for tests
DUTY_TOOLBAR: Final = "cc-duty-toolbar"  # the silence form is made by assets/js/cc-82-duty.js
DUTY_SOUND: Final = "cc-duty-sound"  # "click to enable sound" while the AudioContext waits
DUTY_STATE: Final = "cc-duty-state"  # sounding / silenced until …
DUTY_MSG: Final = "cc-duty-msg"
DUTY_QUEUE: Final = "cc-duty-queue"
DUTY_COUNT: Final = "cc-duty-count"
DUTY_HANDED: Final = "cc-duty-handed"
DUTY_RECENT: Final = "cc-duty-recent"
DUTY_NOTE: Final = "cc-duty-note"  # the note dialog (made by the browser glue inside)
HANDOVER_ROOT: Final = "cc-handover-root"  # the /duty/handover page

# Shift handover and the roster (issue 5)
ROSTER: Final = "cc-roster"  # the wall header's "on duty" line
ROSTER_TEXT: Final = "cc-roster-text"  # its text (set by assets/js/cc-83-roster.js)
HO_TOOLBAR: Final = "cc-ho-toolbar"
HO_MSG: Final = "cc-ho-msg"
HO_BACK: Final = "cc-ho-back"  # link to the duty desk /duty
HO_REPORT: Final = "cc-ho-report"  # the selected report's sections (made by cc-84-handover.js)
HO_META: Final = "cc-ho-meta"  # its window, shift, outgoing / incoming, state
HO_ACTIONS: Final = "cc-ho-actions"  # draft / remarks / sign / accept (made by the JS)
HO_HISTORY: Final = "cc-ho-history"  # past handovers with print links

# Tracks (issue 5)
TRACK_ROOT: Final = "cc-track-root"

# Page rotation /rotate (issue 16): the player (a frame per page and a corner indicator) and
# the chooser of saved rotations
ROT_ROOT: Final = "cc-rot-root"  # data-mode play|choose, data-state loading|running|paused|held
ROT_STAGE: Final = "cc-rot-stage"  # the pages' frames (made by assets/js/cc-90-rotate.js)
ROT_BAR: Final = "cc-rot-bar"  # the corner indicator
ROT_WHAT: Final = "cc-rot-what"  # page i of n and its name
ROT_NEXT: Final = "cc-rot-next"  # next in s / paused / held
ROT_PAUSE: Final = "cc-rot-pause"
ROT_MSG: Final = "cc-rot-msg"  # the player's error (the rotation could not be read)
ROT_LIST: Final = "cc-rot-list"  # the chooser's saved rotations
ROT_FORM: Final = "cc-rot-form"  # its spec form (inputs made by the browser glue)
ROT_FORM_MSG: Final = "cc-rot-form-msg"


def nav_link(page: str) -> str:
    """The header's link to another page (layouts/chrome.py NAV)."""
    return f"cc-nav-{page}"


def legend_count(layer: str) -> str:
    """How many units of a layer are on the map, next to its toggle."""
    return f"cc-legend-count-{layer}"


def detail_field(name: str) -> str:
    """The value element of one event-detail field."""
    return f"cc-detail-{name}"


def as_dict() -> dict[str, str]:
    """The plain ids for the browser."""
    return {
        name: value for name, value in globals().items()
        if name.isupper() and isinstance(value, str)
    }
