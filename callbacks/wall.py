"""Wiring of the wall page. All clientside: no server round trip for anything live.

The functions live in assets/js (namespace `ccwall` of `window.dash_clientside`).
"""

from __future__ import annotations

import dash
from dash import ClientsideFunction, Input, Output

from layouts import ids

NS = "ccwall"


def register(app: dash.Dash) -> None:
    """Attach the wall's clientside callbacks to `app`."""
    # Boot once the config store exists: map layers, panels, websocket.
    app.clientside_callback(
        ClientsideFunction(NS, "boot"),
        Output(ids.BOOTED, "data"),
        Input(ids.CONFIG, "data"),
    )
    # Legend toggles show or hide the worker / resource / camera layers.
    app.clientside_callback(
        ClientsideFunction(NS, "layers"),
        Output(ids.LAYER_TOGGLES, "className"),
        Input(ids.LAYER_TOGGLES, "value"),
    )
    # The selected event (set from JS on a marker or row click) drives the detail card;
    # other features can listen to the same store.
    app.clientside_callback(
        ClientsideFunction(NS, "detail"),
        Output(ids.DETAIL, "hidden"),
        Input(ids.SELECTED, "data"),
    )
    app.clientside_callback(
        ClientsideFunction(NS, "closeDetail"),
        Output(ids.SELECTED, "data", allow_duplicate=True),
        Input(ids.DETAIL_CLOSE, "n_clicks"),
        prevent_initial_call=True,
    )
