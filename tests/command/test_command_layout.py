"""The event panel's static side: every string the browser glue asks for is in the i18n
table, every id it names is in layouts/ids.py, and the layout carries them (feature code cmd).
"""

from __future__ import annotations

import re
from pathlib import Path

from dash import html
from dash.development.base_component import Component

from dashboard.i18n import known_keys
from layouts import command, ids, widgets

JS = sorted((Path(__file__).resolve().parents[2] / "assets" / "js").glob("cc-*.js"))


def _ids_in(tree: Component) -> set[str]:
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, Component):
            if isinstance(getattr(node, "id", None), str):
                found.add(node.id)
            walk(getattr(node, "children", None))
        elif isinstance(node, list | tuple):
            for child in node:
                walk(child)

    walk(tree)
    return found


def test_cmd006_every_literal_string_key_in_the_js_is_in_the_table() -> None:
    keys = known_keys()
    asked = set()
    for path in JS:
        asked |= set(re.findall(r"cc\.t\('([\w.]+)'", path.read_text(encoding="utf-8")))
    assert "cmd.sending" in asked and "alert.ack" in asked
    # `cc.t('conn.' + state)`: a prefix some keys start with
    prefixes = {k for k in asked if k.endswith(".")}
    assert sorted(asked - prefixes - keys) == []
    assert [p for p in prefixes if not any(k.startswith(p) for k in keys)] == []


def test_cmd007_every_id_the_js_names_exists_and_is_unique() -> None:
    named = set()
    for path in JS:
        text = path.read_text(encoding="utf-8")
        named |= set(re.findall(r"\$\('([A-Z_]+)'\)", text))
        named |= set(re.findall(r"\bID\.([A-Z_]+)", text))
    table = ids.as_dict()
    assert sorted(named - set(table)) == []
    values = list(table.values())
    assert len(values) == len(set(values))


def test_cmd008_the_panel_layout_carries_the_command_ids() -> None:
    card = widgets.detail_card("zh-CN")
    found = _ids_in(card) | _ids_in(html.Div([command.alerts_body(), command.alerts_extra()]))
    for name in ("CMD_BODY", "CMD_TASK", "CMD_STAGES", "CMD_ASSIGNEES",
                 "CMD_VERIFY_BOX", "CMD_EVAL_BOX", "CMD_NEARBY", "CMD_PLANS", "CMD_STEPS",
                 "CMD_TIMELINE", "CMD_DISPATCH", "CMD_MSG", "CMD_PROPOSAL", "CMD_PROPOSAL_UNITS",
                 "CMD_FIELDS", "CMD_CONFIRM", "CMD_CANCEL", "CMD_PROPOSAL_HINT", "CMD_PENDING",
                 "ALERTS", "ALERT_COUNT", "ALERT_MORE"):
        assert getattr(ids, name) in found, name
    # the inputs are made by the browser glue (layouts/command.py says why)
    assert ids.CMD_OVERRIDE not in found
