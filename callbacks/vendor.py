"""Browser libraries installed from npm (package.json, `make setup`) and served by the app
itself: command centres run on closed networks, so never a CDN.

    GET /vendor/hls.min.js            hls.js, loaded by the player on its first HLS stream
    GET /vendor/hls.min.js.map        its source map (only developer tools ask for it)
    GET /vendor/hls.js-LICENSE.txt    its licence (Apache-2.0)
    GET /vendor/html-to-image.js      html-to-image (UMD, global `htmlToImage`), loaded by
                                      the replay on its first "save picture" (PNG export)
    GET /vendor/html-to-image.js.map  its source map
    GET /vendor/html-to-image-LICENSE.txt  its licence (MIT)

Cached for a month and revalidated by ETag: the file changes only with package-lock.json.
A file that is not installed is a JSON 404 that says how to install it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from flask import Blueprint, Response, send_file

from callbacks.errors import error
from dashboard.config import ROOT

NODE_MODULES: Final = ROOT / "node_modules"
MAX_AGE_S: Final = 30 * 86400
# public name → (path under node_modules, media type)
FILES: Final[dict[str, tuple[str, str]]] = {
    "hls.min.js": ("hls.js/dist/hls.min.js", "text/javascript"),
    "hls.min.js.map": ("hls.js/dist/hls.min.js.map", "application/json"),
    "hls.js-LICENSE.txt": ("hls.js/LICENSE", "text/plain"),
    "html-to-image.js": ("html-to-image/dist/html-to-image.js", "text/javascript"),
    "html-to-image.js.map": ("html-to-image/dist/html-to-image.js.map", "application/json"),
    "html-to-image-LICENSE.txt": ("html-to-image/LICENSE", "text/plain"),
}


def create_vendor(node_modules: Path = NODE_MODULES) -> Blueprint:
    """The /vendor routes over `node_modules` (the repository's own by default)."""
    vendor = Blueprint("vendor", __name__)

    @vendor.get("/vendor/<name>")
    def serve(name: str) -> Response | tuple[Response, int]:
        entry = FILES.get(name)
        if entry is None:
            return error(404, "no_file", f"no vendor file {name!r}")
        path = node_modules / entry[0]
        if not path.is_file():
            return _missing(f"{name} is not installed: run `make setup` (npm ci)")
        response = send_file(path, mimetype=entry[1], max_age=MAX_AGE_S, conditional=True,
                             etag=True)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return vendor


def _missing(message: str) -> tuple[Response, int]:
    return error(404, "not_installed", message)
