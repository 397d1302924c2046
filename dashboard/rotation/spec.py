"""A rotation spec (docs/ROTATION.md): `wall:60,cockpit:30,cockpit@370283101:10`.

`parse` reads the text and refuses what is malformed (400); `resolve` turns the entries into
the slides one viewer will see, refusing a page their role may not open or an area outside
their scope (403) — the server's check, made again on every open, whoever saved the spec.
Pure: no Redis, no web framework.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from dashboard.city import City
from dashboard.errors import Refused

ANY_ROLE: Final = frozenset({"commander", "duty_officer", "leader", "display"})


@dataclass(frozen=True)
class Page:
    """A page a rotation may show: its path, who may open it, whether it takes `@CODE`."""

    path: str
    roles: frozenset[str]
    scoped: bool


# The pages worth showing unattended. Not the duty desk (it sounds alarms and wants hands)
# nor the handover (a form). The cockpit's roles are its own page's (layouts/cockpit.py).
PAGES: Final[dict[str, Page]] = {
    "wall": Page("/", ANY_ROLE, scoped=False),
    "cockpit": Page("/cockpit", frozenset({"leader", "commander"}), scoped=True),
    "video": Page("/video", ANY_ROLE, scoped=False),
}
MIN_S: Final = 5  # a Dash page takes a second or two to draw: less would show mostly loading
MAX_S: Final = 3600
DEFAULT_S: Final = 30
SLIDES_MAX: Final = 50  # after `@towns` is expanded (a city has a few dozen towns at most)
SPEC_MAX: Final = 1000  # characters
TOWNS: Final = "towns"  # `cockpit@towns`: one slide per town in the viewer's scope
NAME_MAX: Final = 40  # a saved rotation's name (dashboard/rotation/saved.py)

_ENTRY: Final = re.compile(
    r"(?P<page>[a-z]{1,16})(?:@(?P<scope>[0-9]{1,32}|towns))?(?::(?P<secs>[0-9]{1,6}))?")


@dataclass(frozen=True)
class Entry:
    """One comma-separated part of a spec, as written (seconds filled in)."""

    page: str
    scope: str | None
    seconds: int

    def text(self) -> str:
        return self.page + (f"@{self.scope}" if self.scope else "") + f":{self.seconds}"


@dataclass(frozen=True)
class Slide:
    """One page of a resolved rotation, for one viewer."""

    page: str
    scope: str | None
    seconds: int
    path: str  # under the app's prefix, without `lang`
    name: str  # the area's name for the indicator; "" for the viewer's own scope

    def to_dict(self) -> dict[str, Any]:
        return {"page": self.page, "scope": self.scope, "seconds": self.seconds,
                "path": self.path, "name": self.name}


def _bad(code: str, message: str, index: int | None = None, entry: str | None = None) -> Refused:
    detail: dict[str, Any] = {}
    if index is not None:
        detail["index"] = index
    if entry is not None:
        detail["entry"] = entry[:64]
    return Refused(code, 400, message, **detail)


def seconds_arg(raw: Any) -> int:
    """The default interval (`?s=`, or the saved form's): a whole number MIN_S–MAX_S."""
    if raw is None or raw == "":
        return DEFAULT_S
    text = str(raw).strip()
    if not text.isdigit() or not MIN_S <= int(text) <= MAX_S:
        raise _bad("bad_interval", f"an interval is a whole number of seconds, {MIN_S}-{MAX_S}")
    return int(text)


def parse(spec: Any, default_s: int = DEFAULT_S) -> list[Entry]:
    """The entries of `spec`; 400 for anything malformed, naming the entry and its index."""
    if not isinstance(spec, str) or not spec.strip():
        raise _bad("bad_spec", "a rotation needs at least one page, e.g. wall:60,cockpit:30")
    if len(spec) > SPEC_MAX:
        raise _bad("bad_spec", f"a rotation spec is at most {SPEC_MAX} characters")
    entries: list[Entry] = []
    for index, part in enumerate(spec.split(",")):
        text = part.strip()
        found = _ENTRY.fullmatch(text)
        if found is None:
            raise _bad("bad_spec", f"entry {index + 1} ({text[:64]!r}) is not "
                       "page[@area][:seconds]", index, text)
        page = PAGES.get(found["page"])
        if page is None:
            raise _bad("unknown_page", f"entry {index + 1}: no page {found['page']!r} to rotate "
                       f"(one of {', '.join(PAGES)})", index, text)
        if found["scope"] and not page.scoped:
            raise _bad("scope_not_supported", f"entry {index + 1}: the {found['page']} shows the "
                       "viewer's own area; only the cockpit takes @area", index, text)
        secs = int(found["secs"]) if found["secs"] else default_s
        if not MIN_S <= secs <= MAX_S:
            raise _bad("bad_interval", f"entry {index + 1}: {secs} s is outside {MIN_S}-{MAX_S}",
                       index, text)
        entries.append(Entry(found["page"], found["scope"], secs))
    return entries


def normalise(entries: list[Entry]) -> str:
    """The spec as stored and shown: every entry with its seconds."""
    return ",".join(e.text() for e in entries)


def resolve(entries: list[Entry], city: City, role: str, own: str | None) -> list[Slide]:
    """The slides a viewer of `role` limited to `own` (None: the city) will see. 403
    `page_not_allowed` for a page the role may not open, 403 `out_of_scope` for an area
    outside `own`, 400 `unknown_scope` for a code that is no area, `too_many_slides`."""
    slides: list[Slide] = []
    for index, entry in enumerate(entries):
        page = PAGES[entry.page]
        if role not in page.roles:
            raise Refused("page_not_allowed", 403, f"entry {index + 1}: a {role} may not open "
                          f"the {entry.page}", index=index, entry=entry.text(), role=role)
        for code in _areas(entry, index, city, own):
            path = page.path + (f"?scope={code}" if code else "")
            slides.append(Slide(entry.page, code, entry.seconds, path, _name(city, code)))
        if len(slides) > SLIDES_MAX:
            raise _bad("too_many_slides", f"a rotation shows at most {SLIDES_MAX} pages",
                       index, entry.text())
    return slides


def _areas(entry: Entry, index: int, city: City, own: str | None) -> list[str | None]:
    """The area codes one entry stands for: None is the viewer's own scope."""
    if entry.scope is None:
        return [None]
    if entry.scope == TOWNS:
        if own and city.level_of(own) != "city":
            return [own]  # a town's user (or narrower): their own area is their one "town"
        return [town.code for town in city.towns]
    code = entry.scope
    if code != city.code and city.unit(code) is None:
        raise _bad("unknown_scope", f"entry {index + 1}: no town, community or grid {code!r}",
                   index, entry.text())
    if own and not code.startswith(own):
        raise Refused("out_of_scope", 403, f"entry {index + 1}: {code} is outside your scope "
                      f"{own}", index=index, entry=entry.text(), scope=own)
    return [code]


def _name(city: City, code: str | None) -> str:
    if code is None:
        return ""
    if code == city.code:
        return city.name
    unit = city.unit(code)
    return unit.name if unit else code
