"""Who may read what: a user's scope against a record's place (docs/SECURITY.md).

A scope is a town, community or grid code, or None for the whole city. Area codes nest (a
grid's code starts with its community's, which starts with its town's), so a record lies in
a scope when its place starts with the scope's code. A record's place is the grid it belongs
to: an event's grid, the grid a worker is assigned to, the grid a resource or camera stands
in, and for a task or an alert the grid of its event (or of the worker it is about), which
they carry as `grid_id` from when they were written. A record with no place lies outside
every scope: only a city-wide user sees it.

Outside the scope answers as "not found", never as "forbidden", so ids do not leak either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

R = TypeVar("R", bound=Mapping[str, Any])
T = TypeVar("T")

# The lists of a snapshot (the relay's, a replayed wall's), events first: a task or an alert
# without a place of its own lies where its event lies.
SNAPSHOT_LISTS = ("events", "workers", "resources", "cameras", "tasks", "alerts")

# The fields a place is read from, most precise first; `loc_grid_id` is where a worker
# stands, a fallback only for records written before `grid_id` was set on every kind.
PLACE_FIELDS = ("grid_id", "community_id", "town_id", "loc_grid_id")


def place_of(record: Mapping[str, Any]) -> str | None:
    """The area code a record belongs to, or None when it names none."""
    for name in PLACE_FIELDS:
        value = record.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def covers(scope: str | None, place: str | None) -> bool:
    """Whether a user limited to `scope` may see something at `place`."""
    if not scope:
        return True
    return bool(place) and str(place).startswith(scope)


def sees(scope: str | None, record: Mapping[str, Any] | None) -> bool:
    """Whether a user limited to `scope` may see `record` (None: nothing to see)."""
    return record is not None and covers(scope, place_of(record))


def only(scope: str | None, records: Iterable[R]) -> list[R]:
    """The records a user limited to `scope` may see, in their order."""
    if not scope:
        return list(records)
    return [r for r in records if covers(scope, place_of(r))]


def cut(lists: Mapping[str, Sequence[T]], scope: str,
        read: Callable[[T], Mapping[str, Any]]) -> dict[str, list[T]]:
    """A snapshot's lists (`SNAPSHOT_LISTS`; others are kept as they are) cut to what lies
    in `scope`; `read` gives an item's record (the item itself, or its JSON parsed). A task
    or alert written before they carried their grid lies where its event lies. Shared by the
    relay's snapshots and the replayed wall, so both cut by one rule."""
    out: dict[str, Any] = dict(lists)
    grids: dict[str, str | None] = {}
    for name in SNAPSHOT_LISTS:
        if name not in lists:
            continue
        kept = []
        for item in lists[name]:
            record = read(item)
            place = place_of(record)
            if place is None and record.get("event_id"):
                place = grids.get(str(record["event_id"]))
            if name == "events":
                grids[str(record.get("id"))] = place
            if covers(scope, place):
                kept.append(item)
        out[name] = kept
    return out
