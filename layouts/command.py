"""The command loop on the wall: the event panel's sections and the alert strip.

Static skeletons only; assets/js/cc-60…cc-65 fill them with text (never markup) from
`GET /api/events/<id>`, the proposal, and the `task` / `alert` frames. Buttons carry a
`data-cmd` attribute the browser glue listens for (one delegated listener, no per-row ones).
Text inputs and checkboxes are made by the browser glue (ids from layouts.ids): Dash's
controlled inputs would fight the plain DOM values the glue reads and clears.
"""

from __future__ import annotations

from dash import html
from dash.development.base_component import Component

from dashboard.i18n import t
from layouts import ids

SCORES = (1, 2, 3, 4, 5)


def _section(title: str, body: Component, *, class_name: str, extra: Component | None = None
             ) -> html.Section:
    head: list[Component] = [html.H4(title, className="cc-cmd-h")]
    if extra is not None:
        head.append(extra)
    return html.Section(className=f"cc-cmd-sec {class_name}", children=[
        html.Header(head, className="cc-cmd-sec-head"), body])


def _verify_box(lang: str) -> html.Div:
    return html.Div(id=ids.CMD_VERIFY_BOX, className="cc-cmd-form cc-cmd-verify", hidden=True,
                    children=[
        html.Button(t("cmd.passed", lang), className="cc-btn cc-btn-ok",
                    **{"data-cmd": "verify", "data-passed": "1"}),
        html.Button(t("cmd.failed", lang), className="cc-btn cc-btn-bad",
                    **{"data-cmd": "verify", "data-passed": "0"}),
    ])


def _eval_box(lang: str) -> html.Div:
    return html.Div(id=ids.CMD_EVAL_BOX, className="cc-cmd-form cc-cmd-eval", hidden=True,
                    children=[
        html.Div(className="cc-cmd-scores", children=[
            html.Button(t("cmd.score", lang, n=n), className="cc-btn cc-btn-score",
                        **{"data-cmd": "evaluate", "data-score": str(n)})
            for n in SCORES
        ]),
    ])


def panel_sections(lang: str) -> list[Component]:
    """Below the event details: the loop, nearby units, plans, the timeline, and the footer
    with Dispatch; the proposal form replaces the sections while it is open."""
    loop = _section(t("cmd.loop", lang), html.Div([
        html.Div(t("cmd.no_task", lang), id=ids.CMD_TASK, className="cc-cmd-task"),
        html.Ol(id=ids.CMD_STAGES, className="cc-cmd-stages"),
        html.Ul(id=ids.CMD_ASSIGNEES, className="cc-cmd-assignees"),
        _verify_box(lang),
        _eval_box(lang),
    ]), class_name="cc-cmd-loop")
    nearby = _section(t("cmd.nearby", lang), html.Ul(id=ids.CMD_NEARBY,
                                                     className="cc-cmd-units"),
                      class_name="cc-cmd-nearby-sec")
    plans = _section(t("cmd.plans", lang), html.Div([
        html.Ol(id=ids.CMD_PLANS, className="cc-cmd-plans"),
        html.Div(t("cmd.steps", lang), className="cc-cmd-sub"),
        html.Ol(id=ids.CMD_STEPS, className="cc-cmd-steps"),
    ]), class_name="cc-cmd-plans-sec")
    timeline = _section(t("cmd.timeline", lang), html.Ol(id=ids.CMD_TIMELINE,
                                                         className="cc-cmd-timeline"),
                        class_name="cc-cmd-timeline-sec")
    body = html.Div(id=ids.CMD_BODY, className="cc-cmd-body",
                    children=[loop, nearby, plans, timeline])
    proposal = html.Div(id=ids.CMD_PROPOSAL, className="cc-cmd-proposal", hidden=True, children=[
        html.Div(className="cc-cmd-sec-head", children=[
            html.H4(t("cmd.proposal", lang), className="cc-cmd-h"),
            html.Span("", id=ids.CMD_PROPOSAL_HEAD, className="cc-cmd-proposal-plan"),
        ]),
        html.Ul(id=ids.CMD_PROPOSAL_UNITS, className="cc-cmd-units cc-cmd-choose"),
        html.Div(id=ids.CMD_FIELDS, className="cc-cmd-fields"),
        html.Div("", id=ids.CMD_PROPOSAL_HINT, className="cc-cmd-hint"),
        html.Div(className="cc-cmd-actions", children=[
            html.Button(t("cmd.cancel", lang), id=ids.CMD_CANCEL, className="cc-btn",
                        **{"data-cmd": "cancel"}),
            html.Button(t("cmd.confirm", lang), id=ids.CMD_CONFIRM,
                        className="cc-btn cc-btn-primary", **{"data-cmd": "confirm"}),
        ]),
    ])
    foot = html.Footer(id=ids.CMD_FOOT, className="cc-cmd-foot", children=[
        html.Div("", id=ids.CMD_MSG, className="cc-cmd-msg", role="status"),
        html.Button(t("cmd.dispatch", lang), id=ids.CMD_DISPATCH, hidden=True,
                    className="cc-btn cc-btn-primary cc-btn-dispatch",
                    **{"data-cmd": "dispatch"}),
    ])
    return [body, proposal, foot]


def pending_chip(lang: str) -> html.Button:
    """In the panel head: urgent events waiting while the commander works on another one."""
    return html.Button("", id=ids.CMD_PENDING, className="cc-cmd-pending", hidden=True,
                       title=t("cmd.pending_title", lang), **{"data-cmd": "pending"})


def alerts_body() -> html.Ol:
    """The alert strip's cards: a few, gravest and newest first (built by the browser)."""
    return html.Ol(id=ids.ALERTS, className="cc-alerts")


def alerts_extra() -> html.Span:
    """In the alert panel's title bar: how many are open, and how many do not fit."""
    return html.Span(className="cc-panel-extra", children=[
        html.Span("", id=ids.ALERT_MORE, className="cc-alert-more"),
        html.Span("", id=ids.ALERT_COUNT, className="cc-alert-count"),
    ])
