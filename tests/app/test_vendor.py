"""Browser libraries served by the app from node_modules (callbacks/vendor.py).

Feature codes: vid101 hls.js served with its type and long cache headers, vid102 a file that
is not installed (or not ours) is a JSON 404.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import redis
from flask import Flask

from callbacks.vendor import FILES, MAX_AGE_S, NODE_MODULES, create_vendor
from dashboard.config import Settings

from ..auth_util import sign_in


def _app(redis_url: str) -> Flask:
    from app import create_app

    return create_app(dataclasses.replace(Settings(), redis_url=redis_url)).server


def test_vid101_hls_is_served_by_the_app(redis_url: str, r: redis.Redis) -> None:
    client = _app(redis_url).test_client()
    sign_in(client, r, "display")
    res = client.get("/vendor/hls.min.js")
    assert res.status_code == 200
    assert res.mimetype == "text/javascript"
    assert f"max-age={MAX_AGE_S}" in res.headers["Cache-Control"]
    assert res.headers["X-Content-Type-Options"] == "nosniff"
    body = res.get_data()
    assert body == (NODE_MODULES / FILES["hls.min.js"][0]).read_bytes()
    assert b"Hls" in body and len(body) > 100_000
    # the package pinned in package.json is the one installed
    installed = (NODE_MODULES / "hls.js" / "package.json").read_text(encoding="utf-8")
    assert '"version": "1.7.4"' in installed
    # a wall that has it revalidates with its ETag and gets no body
    again = client.get("/vendor/hls.min.js", headers={"If-None-Match": res.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""
    licence = client.get("/vendor/hls.js-LICENSE.txt")
    assert licence.status_code == 200 and licence.mimetype == "text/plain"
    assert b"Apache License" in licence.get_data()


def test_vid102_missing_or_unknown_files_are_json_404s(tmp_path: Path, redis_url: str,
                                                       r: redis.Redis) -> None:
    bare = Flask(__name__)
    bare.register_blueprint(create_vendor(tmp_path / "node_modules"))
    client = bare.test_client()
    res = client.get("/vendor/hls.min.js")
    assert res.status_code == 404
    assert res.is_json and "make setup" in res.get_json()["error"]
    assert res.get_json()["status"] == 404
    # only the files listed are served, never another path under node_modules
    app = _app(redis_url).test_client()
    sign_in(app, r, "display")
    for name in ("hls.js", "package.json", "hls.light.min.js"):
        res = app.get(f"/vendor/{name}")
        assert res.status_code == 404, name
        assert res.is_json and "no vendor file" in res.get_json()["error"], name
