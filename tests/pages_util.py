"""A page's tree as the browser gets it: Dash's router callback (layouts/pages.py) asked for
an address, over HTTP with the client's session, as dcc.Location reports it on mounting."""

from __future__ import annotations

import json
from typing import Any

from layouts import ids


def page_tree(client: Any, address: str) -> Any:
    """The rendered page for `address` (`/video?lang=en`), as parsed JSON."""
    path, _, query = address.partition("?")
    res = client.post("/_dash-update-component", json={
        "output": f"{ids.PAGE}.children",
        "outputs": {"id": ids.PAGE, "property": "children"},
        "inputs": [{"id": ids.URL, "property": "pathname", "value": path}],
        "state": [{"id": ids.URL, "property": "search", "value": f"?{query}" if query else ""}],
        "changedPropIds": [f"{ids.URL}.pathname"],
    })
    assert res.status_code == 200, res.get_data(as_text=True)
    return res.get_json()["response"][ids.PAGE]["children"]


def page_text(client: Any, address: str) -> str:
    """`page_tree` as compact JSON text, for looking for ids and values in it."""
    return json.dumps(page_tree(client, address), ensure_ascii=False, separators=(",", ":"))
