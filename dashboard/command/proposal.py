"""The proposal for an event: the best plan's resource calls filled with the nearest free units
that make it in time (the event's own grid worker first), what could not be filled, and the
nearest free units of every kind to choose from; plus the last proposal shown for an event,
which a dispatch compares the commander's pick against."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from dashboard.command.nearby import Query, nearest, nearest_many
from dashboard.config import Settings
from dashboard.errors import Refused
from dashboard.store import Store

if TYPE_CHECKING:
    from dashboard.command.plans import Match, PlanLibrary

SHOWN_TTL_S: Final = 900  # the last proposal shown for an event (Pproposal:{event_id})
CANDIDATES: Final = 10


def show(store: Store, plans: PlanLibrary, settings: Settings,
         event_id: str, scope: str | None = None) -> dict[str, Any]:
    """The proposal for the event (404 when there is none), remembered as shown."""
    event = store.event(event_id)
    if event is None:
        raise Refused("no_event", 404, f"no event {event_id!r}")
    proposal = propose(store, plans, settings, event, scope=scope)
    # What the commander was shown: units move, and picking exactly this a few seconds
    # later is no override even if the nearest ones changed meanwhile.
    shown = [[a["kind"], a["id"]] for a in units_of(proposal)]
    store.r.set(store.key(f"proposal:{event_id}"), json.dumps(shown), ex=SHOWN_TTL_S)
    return proposal


def last_shown(store: Store, event_id: str) -> list[dict[str, str]]:
    """The units of the event's last proposal shown ([] after SHOWN_TTL_S)."""
    raw = store.r.get(store.key(f"proposal:{event_id}"))
    return [{"kind": k, "id": i} for k, i in json.loads(raw)] if raw else []


def units_of(proposal: dict[str, Any]) -> list[dict[str, str]]:
    """The units the proposal's calls were filled with, as assignees ({"id", "kind"})."""
    return [{"id": u["id"], "kind": u["kind"]}
            for call in proposal["calls"] for u in call["units"]]


def propose(store: Store, plans: PlanLibrary, settings: Settings, event: dict[str, Any],
            candidates: bool = True, scope: str | None = None,
            found: dict[tuple[str, str], tuple[dict[str, Any], str]] | None = None
            ) -> dict[str, Any]:
    """The proposal JSON for `event`; without `candidates` their lists stay empty; with a
    `scope`, units of that area only. `found` gets the stored record and revision of the
    units its search found in one round trip (nearby.nearest_many)."""
    matches = plans.match(event, limit=1)
    best: Match | None = matches[0] if matches else None
    # Without a plan the grid worker goes: everyday grid cases need no preset plan.
    wanted = ([(c.kind, c.count, c.max_eta_s) for c in best.plan.resources] if best
              else [("worker", 1, None)])
    lon, lat = float(event["lon"]), float(event["lat"])
    extra: list[Query] = [("worker", None, CANDIDATES), ("resource", None, CANDIDATES)] \
        if candidates else []
    batch = _batch(wanted)
    # one round trip for every call and both candidate lists, when that finds what one
    # query after another would (each call's kind once)
    answers = nearest_many(store, settings, lon, lat, [*batch, *extra], scope=scope,
                           found=found) if batch is not None else None
    used: set[tuple[str, str]] = set()
    calls, unfilled = [], []
    for i, (kind, count, max_eta) in enumerate(wanted):
        rows = answers[i] if answers is not None else _search(
            store, settings, lon, lat, kind, count, used, scope)
        units = _pick(event, kind, count, max_eta, rows, used, settings)
        calls.append({"kind": kind, "count": count, "max_eta_s": max_eta, "units": units})
        if len(units) < count:
            unfilled.append({"kind": kind, "count": count, "max_eta_s": max_eta,
                             "missing": count - len(units)})
    if not candidates:
        lists: list[list[dict[str, Any]]] = [[], []]
    elif answers is not None:
        lists = answers[len(wanted):]
    else:
        lists = nearest_many(store, settings, lon, lat, extra, scope=scope)
    return {
        "event_id": event["id"],
        "plan": best.to_dict() if best else None,
        "calls": calls,
        "unfilled": unfilled,
        "candidates": {"workers": lists[0], "resources": lists[1]},
    }


def _query(kind: str, count: int, taken: int) -> Query:
    """The nearest-units query for one call with `taken` units of its kind already used:
    enough to skip those, and for workers the candidates among which the grid's own is."""
    if kind == "worker":
        return ("worker", None, count + taken + CANDIDATES)
    return ("resource", kind, count + taken)


def _batch(wanted: list[tuple[str, int, int | None]]) -> list[Query] | None:
    """Every call's query at once, or None when two calls want the same kind: then a call
    must skip what an earlier one took, and how many depends on what that one found."""
    kinds = [kind for kind, _, _ in wanted]
    if len(set(kinds)) < len(kinds):
        return None
    # `taken` as one query after another would have it at most (resources: any kind counts)
    out, resources = [], 0
    for kind, count, _ in wanted:
        out.append(_query(kind, count, 0 if kind == "worker" else resources))
        if kind != "worker":
            resources += count
    return out


def _search(store: Store, settings: Settings, lon: float, lat: float, kind: str, count: int,
            used: set[tuple[str, str]], scope: str | None) -> list[dict[str, Any]]:
    unit_kind = "worker" if kind == "worker" else "resource"
    taken = sum(1 for k, _ in used if k == unit_kind)
    query_kind, resource_kind, n = _query(kind, count, taken)
    return nearest(store, settings, lon, lat, kind=query_kind, resource_kind=resource_kind,
                   count=n, scope=scope)


def _pick(event: dict[str, Any], kind: str, count: int, max_eta: int | None,
          found: list[dict[str, Any]], used: set[tuple[str, str]],
          settings: Settings) -> list[dict[str, Any]]:
    """Up to `count` units for one resource call out of `found`, none in `used` (which it
    extends)."""
    unit_kind = "worker" if kind == "worker" else "resource"
    if kind == "worker":
        # the worker of the event's own grid knows the place: first when near enough
        grid, near = event.get("grid_id"), settings.near_radius_m
        found = sorted(found, key=lambda u: (not (grid and u.get("grid_id") == grid
                                                  and u["distance_m"] <= near),
                                             u["distance_m"]))
    chosen = []
    for unit in found:
        if (unit_kind, unit["id"]) in used:
            continue
        if max_eta is not None and unit["eta_s"] > max_eta:
            continue
        chosen.append(unit)
        used.add((unit_kind, unit["id"]))
        if len(chosen) >= count:
            break
    return chosen
