"""The few pages served without Dash (sign-in, a 403, a printable report), rendered from
Jinja2 templates in layouts/templates/ with autoescaping on: a value is text unless a
template says otherwise, and no call site escapes by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from dashboard.i18n import t

TEMPLATES: Final = Path(__file__).resolve().parent / "templates"

_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                   keep_trailing_newline=True)
_env.globals["t"] = t


def render(name: str, **values: Any) -> str:
    """The template `name` filled with `values`; `t(key, lang, …)` is at hand in every one."""
    return _env.get_template(name).render(**values)


# The sign-in page's only script. Fixed text, its data read from the JSON block before it,
# so the Content-Security-Policy allows it by hash (callbacks/access/security.py) with no file
# to serve without a session.
LOGIN_SCRIPT: Final = (TEMPLATES / "login.js").read_text(encoding="utf-8")

