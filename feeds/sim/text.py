"""Chinese text for the demo simulator: people, phones, plates, places, filled templates.

The pools live in `data/sim/*.json` so they can be edited without touching code. Everything
here draws from a `random.Random` passed in, so the same seed writes the same words.
"""

from __future__ import annotations

import json
import random
import string
from functools import cache
from itertools import accumulate
from typing import Any

from dashboard.config import ROOT

DATA_DIR = ROOT / "data" / "sim"
# Chinese plates never use I or O (too close to 1 and 0).
_PLATE_CHARS = "".join(c for c in string.ascii_uppercase if c not in "IO") + string.digits
_TOWN_SUFFIXES = ("街道办事处", "街道", "镇", "乡")


@cache
def load_pool(name: str) -> dict[str, Any]:
    """One JSON pool from data/sim, read once per process."""
    return json.loads((DATA_DIR / f"{name}.json").read_text("utf-8"))


class Weighted:
    """A weighted choice with the cumulative weights computed once."""

    __slots__ = ("cum", "items")

    def __init__(self, weights: dict[str, float]) -> None:
        self.items = [k for k in weights if not k.startswith("_")]
        self.cum = list(accumulate(float(weights[k]) for k in self.items))

    def pick(self, rng: random.Random) -> str:
        return rng.choices(self.items, cum_weights=self.cum)[0]


def is_urban(town_name: str) -> bool:
    """Streets (街道) are the urban core; towns (镇) are countryside with a small centre."""
    return town_name.endswith("街道") or town_name.endswith("街道办事处")


def short_town(name: str) -> str:
    """凤台街道 → 凤台, 南村镇 → 南村: the form used in unit names (凤台中队)."""
    for suffix in _TOWN_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


class Text:
    """Name and place generators over the JSON pools."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        names = load_pool("names")
        self.places: dict[str, Any] = load_pool("places")
        self._surnames = Weighted(names["surnames"])
        self._male: list[str] = names["given_male"]
        self._female: list[str] = names["given_female"]
        self._prefixes: list[str] = names["mobile_prefixes"]
        self._grid_cache: dict[str, tuple[str, str, str]] = {}

    def person(self, rng: random.Random) -> str:
        given = self._male if rng.random() < 0.55 else self._female
        return self._surnames.pick(rng) + rng.choice(given)

    def masked_person(self, rng: random.Random) -> str:
        """王某 / 王某某: how case records name private people."""
        return self._surnames.pick(rng) + ("某某" if rng.random() < 0.3 else "某")

    def phone(self, rng: random.Random) -> str:
        return rng.choice(self._prefixes) + f"{rng.randrange(100_000_000):08d}"

    def masked_phone(self, rng: random.Random) -> str:
        p = self.phone(rng)
        return f"{p[:3]}****{p[-4:]}"

    def plate(self, rng: random.Random, suffix: str = "") -> str:
        """A Qingdao (鲁B) plate; police plates end in 警, fire and rescue in 应急."""
        n = 4 if suffix else 5
        return "鲁B·" + "".join(rng.choice(_PLATE_CHARS) for _ in range(n)) + suffix

    def village(self, rng: random.Random) -> str:
        p = self.places
        suffix = rng.choice(p["village_suffixes"])
        stem = self._surnames.pick(rng)
        return rng.choice(p["village_prefixes"]) + stem + suffix

    def grid_places(self, grid_code: str, urban: bool) -> tuple[str, str, str]:
        """(road, cross road, village) that belong to one grid, the same on every call.

        Seeded by the grid code, not the shared stream, so a grid keeps its streets
        whatever else happened first.
        """
        hit = self._grid_cache.get(grid_code)
        if hit is not None:
            return hit
        rng = random.Random(f"{self.seed}:{grid_code}")
        p = self.places
        if urban:
            road, road2 = rng.sample(p["urban_roads"], 2)
        else:
            road = rng.choice(p["town_street_prefixes"]) + rng.choice(p["town_streets"])
            road2 = rng.choice(p["town_street_prefixes"]) + rng.choice(p["town_streets"])
            if road2 == road:
                road2 = "中心路"
        hit = (road, road2, self.village(rng))
        self._grid_cache[grid_code] = hit
        return hit


def fill(template: str, ctx: dict[str, Any]) -> str:
    """str.format that leaves unknown placeholders visible instead of raising."""
    return template.format_map(_Keep(ctx))


class _Keep(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"
