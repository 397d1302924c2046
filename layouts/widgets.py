"""Reusable big-screen widgets: panels, KPI tiles, bar lists, the legend, the event-detail card.

Values that change live start as a dash and are filled by the browser glue (assets/js);
every element it writes to has an id from `layouts.ids`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dash import dcc, html
from dash.development.base_component import Component

from dashboard.i18n import t
from dashboard.models import SEVERITIES
from layouts import command, ids, theme

DASH = "–"


def panel(
    title: str, children: Component | Sequence[Component], *, extra: Component | None = None,
    class_name: str = "",
) -> html.Section:
    """A framed panel with a title bar; `extra` sits at the right of the title bar."""
    head = [html.Span(className="cc-panel-mark"), html.H2(title, className="cc-panel-title")]
    if extra is not None:
        head.append(extra)
    return html.Section(
        className=f"cc-panel {class_name}".strip(),
        children=[html.Header(head, className="cc-panel-head"),
                  html.Div(children, className="cc-panel-body")],
    )


def kpi(label: str, value_id: str, modifier: str = "") -> html.Div:
    return html.Div(
        className=f"cc-kpi {modifier}".strip(),
        children=[html.Div(DASH, id=value_id, className="cc-kpi-value"),
                  html.Div(label, className="cc-kpi-label")],
    )


def severity_tiles(lang: str) -> html.Div:
    """Today's count per national level, each tile in its level's colour."""
    tiles = []
    for level, sev in SEVERITIES.items():
        tiles.append(html.Div(
            className=f"cc-sev-tile cc-sev-{level}",
            style={"--sev": sev.colour},
            children=[
                html.Div(t("sev.level", lang, roman=sev.roman), className="cc-sev-roman"),
                html.Div(DASH, id=ids.kpi_severity(level), className="cc-sev-value"),
                html.Div(t(f"sev.{level}", lang), className="cc-sev-name"),
            ],
        ))
    return html.Div(tiles, className="cc-sev-tiles")


def bar_list(group: str, codes: Iterable[str], prefix: str, lang: str, list_id: str) -> html.Ul:
    """Horizontal bars, one row per code; the browser sets each bar's scale and value."""
    rows = []
    for code in codes:
        rows.append(html.Li(
            id=ids.bar_row(group, code),
            className="cc-bar-row",
            **{"data-code": code},
            children=[
                html.Span(t(f"{prefix}.{code}", lang), className="cc-bar-label"),
                html.Span(html.Span(className="cc-bar-fill"), className="cc-bar-track"),
                html.Span(DASH, className="cc-bar-value"),
            ],
        ))
    return html.Ul(rows, id=list_id, className=f"cc-bars cc-bars-{group}")


def legend(lang: str) -> html.Div:
    """Severity key plus the unit-layer toggles (a Checklist wired in callbacks.wall)."""
    sev_keys = [
        html.Span(
            className="cc-legend-sev",
            children=[html.Span(sev.roman, className="cc-legend-dot",
                                style={"background": sev.colour}),
                      html.Span(t(f"sev.{level}", lang))],
        )
        for level, sev in SEVERITIES.items()
    ]
    options = [
        {
            "label": html.Span(className="cc-toggle", children=[
                html.Span(className="cc-toggle-dot",
                          style={"background": theme.LAYER_SWATCH[layer]}),
                html.Span(t(f"legend.{layer}s", lang), className="cc-toggle-name"),
                html.Span(DASH, id=ids.legend_count(layer), className="cc-toggle-count"),
            ]),
            "value": layer,
        }
        for layer in theme.LAYERS
    ]
    return html.Div(id=ids.LEGEND, className="cc-legend", children=[
        html.Div(t("legend.events", lang), className="cc-legend-head"),
        html.Div(sev_keys, className="cc-legend-sevs"),
        html.Div(t("panel.legend", lang), className="cc-legend-head"),
        dcc.Checklist(
            id=ids.LAYER_TOGGLES, options=options, value=list(theme.LAYERS),
            className="cc-toggles", inputClassName="cc-toggle-input",
            labelClassName="cc-toggle-label",
        ),
    ])


def detail_card(lang: str) -> html.Aside:
    """The event panel: the selected event's details and its command loop (layouts.command);
    hidden until one is selected, values set as text by the browser."""
    rows = []
    for name in ids.DETAIL_FIELDS:
        if name == "title":
            continue
        rows.extend([
            html.Dt(t(f"detail.{name}", lang), className=f"cc-detail-key cc-dk-{name}"),
            html.Dd(DASH, id=ids.detail_field(name), className=f"cc-detail-val cc-dv-{name}"),
        ])
    return html.Aside(id=ids.DETAIL, className="cc-detail", hidden=True, children=[
        html.Header(className="cc-detail-head", children=[
            html.Span("", id=ids.DETAIL_CHIP, className="cc-sev-chip cc-detail-chip"),
            html.H3(DASH, id=ids.detail_field("title"), className="cc-detail-title"),
            command.pending_chip(lang),
            html.Button("×", id=ids.DETAIL_CLOSE, className="cc-detail-close",
                        title=t("detail.close", lang), n_clicks=0),
        ]),
        html.Dl(rows, className="cc-detail-grid"),
        *command.panel_sections(lang),
    ])
