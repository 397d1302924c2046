"""Saved rotations (docs/ROTATION.md): a commander names a spec, a kiosk opens
`/rotate/<name>`.

`Protations` is one hash, name → JSON `{name, spec, by, ts}`; the spec is stored normalised
(every entry with its seconds) and checked again against each viewer when opened
(dashboard/rotation/spec.py), so a rotation saved by a city-wide commander never shows a
town's kiosk more than its own area.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from dashboard import lua
from dashboard.errors import Refused
from dashboard.rotation.spec import NAME_MAX
from dashboard.store import Store, now_ms

ROTATIONS_MAX: Final = 100
_SAVE: Final = lua.source(__file__, "rotation_save.lua")


def check_name(value: Any) -> str:
    """A rotation name: 1–40 characters after trimming, no control characters, no slash (it
    is a path segment: `/rotate/<name>`)."""
    name = value.strip() if isinstance(value, str) else ""
    if not 1 <= len(name) <= NAME_MAX or "/" in name or "?" in name or "#" in name or \
            any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise Refused("bad_name", 400, f"a rotation name is 1-{NAME_MAX} characters, without "
                      "'/', '?', '#' or control characters")
    return name


class Rotations:
    """The saved rotations on `store`."""

    def __init__(self, store: Store, clock: Callable[[], int] = now_ms) -> None:
        self.store = store
        self.clock = clock
        self._save = store.script(_SAVE)

    @property
    def _key(self) -> str:
        return self.store.key("rotations")

    def all(self) -> list[dict[str, Any]]:
        """Every saved rotation, by name."""
        found = [_load(raw) for raw in self.store.r.hvals(self._key)]
        return sorted((f for f in found if f is not None), key=lambda f: f["name"])

    def get(self, name: str) -> dict[str, Any] | None:
        raw = self.store.r.hget(self._key, name)
        return _load(raw) if raw is not None else None

    def save(self, name: Any, spec: str, by: str) -> dict[str, Any]:
        """Save (or replace) `spec` — already parsed and normalised — under `name`; a new
        name past ROTATIONS_MAX is 409."""
        name = check_name(name)
        saved = {"name": name, "spec": spec, "by": by, "ts": int(self.clock())}
        text = json.dumps(saved, ensure_ascii=False, separators=(",", ":"))
        if int(self._save(name, text, ROTATIONS_MAX)) < 0:
            raise Refused("too_many_rotations", 409,
                          f"at most {ROTATIONS_MAX} saved rotations; delete one first")
        return saved

    def delete(self, name: Any) -> str:
        name = check_name(name)
        if not self.store.r.hdel(self._key, name):
            raise Refused("no_rotation", 404, f"no saved rotation {name!r}")
        return name


def _load(raw: Any) -> dict[str, Any] | None:
    """A stored rotation, or None for one broken by hand (skipped, never a 500)."""
    try:
        found = json.loads(raw)
    except ValueError:
        return None
    ok = isinstance(found, dict) and isinstance(found.get("name"), str) and \
        isinstance(found.get("spec"), str)
    return found if ok else None
