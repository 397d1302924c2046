"""The duty roster (值班表): shifts, teams, a rotation that covers any date, overrides.

The roster is one JSON document (shape: data/roster.json, rules: docs/DUTY.md, "The
roster") kept in Redis under `Proster`, seeded from data/roster.json the
first time it is read. Shifts tile the local day (`CC_TZ`) with no gap and no overlap; a
shift belongs to the date it starts on, so the night shift of 11-25 runs 20:00 on 11-25 to
08:00 on 11-26. The team on a date's shift is `rotation.pattern[(date - epoch) mod len]`,
unless `overrides[date][shift]` names another team or other people.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from dashboard.config import ROOT
from dashboard.store import Store

DEFAULT_PATH: Final = ROOT / "data" / "roster.json"
HHMM: Final = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
ID_RE: Final = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
DAY_MIN: Final = 24 * 60
MAX_SHIFTS: Final = 6
MAX_TEAMS: Final = 50
MAX_PEOPLE: Final = 500
MAX_PATTERN: Final = 366
MAX_OVERRIDES: Final = 1000
MAX_OFFICERS: Final = 20
TEXT_MAX: Final = 64
DOC_MAX_BYTES: Final = 256 * 1024


class RosterError(ValueError):
    """The roster document breaks a rule; `where` names the field (e.g. `teams[1].leader`)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


@dataclass(frozen=True)
class Shift:
    id: str
    name: dict[str, str]
    start_min: int  # minutes after local midnight
    length_min: int


@dataclass(frozen=True)
class Duty:
    """Who holds one shift of one date, and when (epoch ms, end excluded)."""

    date: str
    shift: Shift
    start_ms: int
    end_ms: int
    team: str | None
    leader: str | None
    officers: tuple[str, ...]

    def to_dict(self, people: dict[str, dict[str, Any]], lang: str = "zh-CN") -> dict[str, Any]:
        def person(user: str) -> dict[str, Any]:
            info = people.get(user) or {}
            return {"user": user, "name": info.get("name") or user,
                    "title": info.get("title") or ""}

        return {"date": self.date, "shift": self.shift.id,
                "shift_name": self.shift.name.get(lang) or self.shift.name.get("zh-CN")
                or self.shift.id,
                "shift_names": dict(self.shift.name),
                "from": self.start_ms, "to": self.end_ms, "team": self.team,
                "leader": person(self.leader) if self.leader else None,
                "officers": [person(u) for u in self.officers]}


def _minutes(text: Any, where: str) -> int:
    if not isinstance(text, str) or not HHMM.match(text):
        raise RosterError(where, "a time of day HH:MM (00:00-23:59)")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _text(value: Any, where: str, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > TEXT_MAX:
        raise RosterError(where, f"a text of 1-{TEXT_MAX} characters")
    return value.strip()


def _ident(value: Any, where: str) -> str:
    if not isinstance(value, str) or not ID_RE.match(value):
        raise RosterError(where, "an id of letters, digits and _.@- (1-64)")
    return value


def _names(value: Any, where: str) -> dict[str, str]:
    if isinstance(value, str):
        return {"zh-CN": _text(value, where)}
    if not isinstance(value, dict) or not value.get("zh-CN"):
        raise RosterError(where, 'a name, or {"zh-CN": "…", "en": "…"}')
    return {lang: _text(text, f"{where}.{lang}") for lang, text in value.items()
            if lang in ("zh-CN", "en")}


def _day(value: Any, where: str) -> date:
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise RosterError(where, "a date YYYY-MM-DD")


class Roster:
    """A validated roster. Build with `Roster.from_doc(doc, tz)` (RosterError when bad)."""

    def __init__(self, doc: dict[str, Any], tz: str, shifts: list[Shift],
                 teams: dict[str, dict[str, Any]], people: dict[str, dict[str, Any]],
                 epoch: date, pattern: list[dict[str, str]],
                 overrides: dict[str, dict[str, dict[str, Any]]]) -> None:
        self.doc = doc
        self.tz = ZoneInfo(tz)
        self.shifts = shifts  # by start of day (the first starts earliest after midnight)
        self.teams = teams
        self.people = people
        self.epoch = epoch
        self.pattern = pattern
        self.overrides = overrides

    # -- validation ---------------------------------------------------------------------

    @classmethod
    def from_doc(cls, doc: Any, tz: str) -> Roster:
        """Check every rule (RosterError naming the first broken one) and build."""
        if not isinstance(doc, dict):
            raise RosterError("roster", "a JSON object")
        if len(json.dumps(doc, ensure_ascii=False).encode()) > DOC_MAX_BYTES:
            raise RosterError("roster", f"at most {DOC_MAX_BYTES} bytes")
        people_raw = doc.get("people")
        if not isinstance(people_raw, dict) or not 0 < len(people_raw) <= MAX_PEOPLE:
            raise RosterError("people", f"an object user → {{name, title}}, 1-{MAX_PEOPLE}")
        people: dict[str, dict[str, Any]] = {}
        for user, info in people_raw.items():
            _ident(user, f"people.{user}")
            if not isinstance(info, dict):
                raise RosterError(f"people.{user}", 'an object {"name": "…"}')
            people[user] = {"name": _text(info.get("name"), f"people.{user}.name"),
                            "title": _text(info.get("title"), f"people.{user}.title", False)}
        shifts = cls._shifts(doc.get("shifts"))
        shift_ids = {s.id for s in shifts}
        teams_raw = doc.get("teams")
        if not isinstance(teams_raw, list) or not 0 < len(teams_raw) <= MAX_TEAMS:
            raise RosterError("teams", f"a list of 1-{MAX_TEAMS} teams")
        teams: dict[str, dict[str, Any]] = {}
        for i, team in enumerate(teams_raw):
            where = f"teams[{i}]"
            if not isinstance(team, dict):
                raise RosterError(where, "an object {id, name, leader, officers}")
            tid = _ident(team.get("id"), f"{where}.id")
            if tid in teams:
                raise RosterError(f"{where}.id", f"team {tid!r} twice")
            teams[tid] = {"id": tid, "name": _names(team.get("name", tid), f"{where}.name"),
                          **cls._crew(team, where, people)}
        rotation = doc.get("rotation")
        if not isinstance(rotation, dict):
            raise RosterError("rotation", "an object {epoch, pattern}")
        epoch = _day(rotation.get("epoch"), "rotation.epoch")
        pattern_raw = rotation.get("pattern")
        if not isinstance(pattern_raw, list) or not 0 < len(pattern_raw) <= MAX_PATTERN:
            raise RosterError("rotation.pattern", f"a list of 1-{MAX_PATTERN} days")
        pattern: list[dict[str, str]] = []
        for i, day in enumerate(pattern_raw):
            where = f"rotation.pattern[{i}]"
            if not isinstance(day, dict) or set(day) != shift_ids:
                raise RosterError(where, f"one team for each shift {sorted(shift_ids)}")
            for sid, tid in day.items():
                if tid not in teams:
                    raise RosterError(f"{where}.{sid}", f"no team {tid!r}")
            pattern.append(dict(day))
        overrides: dict[str, dict[str, dict[str, Any]]] = {}
        over_raw = doc.get("overrides", {})
        if not isinstance(over_raw, dict) or len(over_raw) > MAX_OVERRIDES:
            raise RosterError("overrides", f"an object date → {{shift: team}}, at most "
                              f"{MAX_OVERRIDES} dates")
        for day_text, per_shift in over_raw.items():
            where = f"overrides.{day_text}"
            _day(day_text, where)
            if not isinstance(per_shift, dict) or not per_shift:
                raise RosterError(where, "an object shift → team id or {leader, officers}")
            overrides[day_text] = {}
            for sid, what in per_shift.items():
                if sid not in shift_ids:
                    raise RosterError(f"{where}.{sid}", f"no shift {sid!r}")
                if isinstance(what, str):
                    if what not in teams:
                        raise RosterError(f"{where}.{sid}", f"no team {what!r}")
                    overrides[day_text][sid] = {**teams[what]}
                elif isinstance(what, dict):
                    overrides[day_text][sid] = {"id": None,
                                                **cls._crew(what, f"{where}.{sid}", people)}
                else:
                    raise RosterError(f"{where}.{sid}", "a team id or {leader, officers}")
        return cls(doc, tz, shifts, teams, people, epoch, pattern, overrides)

    @staticmethod
    def _shifts(raw: Any) -> list[Shift]:
        if not isinstance(raw, list) or not 0 < len(raw) <= MAX_SHIFTS:
            raise RosterError("shifts", f"a list of 1-{MAX_SHIFTS} shifts")
        spans: list[tuple[int, int, str, dict[str, str]]] = []
        for i, s in enumerate(raw):
            where = f"shifts[{i}]"
            if not isinstance(s, dict):
                raise RosterError(where, "an object {id, name, start, end}")
            sid = _ident(s.get("id"), f"{where}.id")
            if any(x[2] == sid for x in spans):
                raise RosterError(f"{where}.id", f"shift {sid!r} twice")
            start, end = _minutes(s.get("start"), f"{where}.start"), _minutes(
                s.get("end"), f"{where}.end")
            spans.append((start, end, sid, _names(s.get("name", sid), f"{where}.name")))
        spans.sort()
        # the shifts must tile the day: each ends where the next (cyclically) starts
        for k, (_start, end, sid, _) in enumerate(spans):
            following = spans[(k + 1) % len(spans)][0]
            if end != following:
                raise RosterError("shifts", f"shift {sid!r} ends at {end // 60:02d}:"
                                  f"{end % 60:02d} but the next starts at {following // 60:02d}:"
                                  f"{following % 60:02d}: shifts must cover the day, no gap, "
                                  "no overlap")
        out = [Shift(sid, names, start, (end - start) % DAY_MIN or DAY_MIN)
               for start, end, sid, names in spans]
        if sum(s.length_min for s in out) != DAY_MIN:
            raise RosterError("shifts", "shifts must cover the day once (two start together)")
        return out

    @staticmethod
    def _crew(raw: dict[str, Any], where: str, people: dict[str, Any]) -> dict[str, Any]:
        leader = raw.get("leader")
        if leader is not None and leader not in people:
            raise RosterError(f"{where}.leader", f"{leader!r} is not in people")
        officers = raw.get("officers")
        if not isinstance(officers, list) or not 0 < len(officers) <= MAX_OFFICERS:
            raise RosterError(f"{where}.officers", f"a list of 1-{MAX_OFFICERS} user names")
        for k, user in enumerate(officers):
            if user not in people:
                raise RosterError(f"{where}.officers[{k}]", f"{user!r} is not in people")
        if len(set(officers)) != len(officers):
            raise RosterError(f"{where}.officers", "a person twice")
        return {"leader": leader, "officers": tuple(officers)}

    # -- who is on duty -----------------------------------------------------------------

    def _start(self, day: date, shift: Shift) -> int:
        local = datetime.combine(day, time(shift.start_min // 60, shift.start_min % 60),
                                 self.tz)
        return int(local.timestamp() * 1000)

    def duty(self, day: date, shift: Shift) -> Duty:
        """Who holds `shift` of `day` (a date's shift starts on that date)."""
        text = day.isoformat()
        crew = self.overrides.get(text, {}).get(shift.id)
        if crew is None:
            tid = self.pattern[(day - self.epoch).days % len(self.pattern)][shift.id]
            crew = self.teams[tid]
        start = self._start(day, shift)
        end_day = day + timedelta(days=1) if shift.start_min + shift.length_min >= DAY_MIN \
            else day
        end_min = (shift.start_min + shift.length_min) % DAY_MIN
        end = int(datetime.combine(end_day, time(end_min // 60, end_min % 60), self.tz)
                  .timestamp() * 1000)
        return Duty(text, shift, start, end, crew.get("id"), crew.get("leader"),
                    tuple(crew.get("officers") or ()))

    def at(self, now_ms: int) -> Duty:
        """The shift holding the moment `now_ms`: today's, or yesterday's when it runs past
        midnight."""
        today = datetime.fromtimestamp(now_ms / 1000, self.tz).date()
        for day in (today, today - timedelta(days=1)):
            for shift in self.shifts:
                found = self.duty(day, shift)
                if found.start_ms <= now_ms < found.end_ms:
                    return found
        raise AssertionError("validated shifts cover every moment")  # pragma: no cover

    def next(self, now_ms: int) -> Duty:
        """The shift after the one holding `now_ms`."""
        return self.at(self.at(now_ms).end_ms)

    def on_date(self, day: date) -> list[Duty]:
        """Every shift of one date, in order."""
        return [self.duty(day, s) for s in self.shifts]

    def name_of(self, user: str | None) -> str:
        if not user:
            return ""
        return str((self.people.get(user) or {}).get("name") or user)

    def now_json(self, now_ms: int, lang: str = "zh-CN") -> dict[str, Any]:
        """`{"now": current shift, "next": the next}` for the API and the header."""
        current = self.at(now_ms)
        return {"now": current.to_dict(self.people, lang),
                "next": self.at(current.end_ms).to_dict(self.people, lang),
                "ts": now_ms}


def load_file(path: Path = DEFAULT_PATH) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


class RosterStore:
    """The roster in Redis (`Proster`), seeded from a file when absent."""

    def __init__(self, store: Store, tz: str, seed: Path = DEFAULT_PATH) -> None:
        self.store = store
        self.tz = tz
        self.seed = seed
        self.key = store.key("roster")
        self._memo: tuple[str, Roster] | None = None

    def doc(self) -> dict[str, Any]:
        raw = self.store.r.get(self.key)
        if raw is None:
            doc = load_file(self.seed)
            Roster.from_doc(doc, self.tz)  # a broken seed file fails loudly here
            self.store.r.set(self.key, json.dumps(doc, ensure_ascii=False), nx=True)
            raw = self.store.r.get(self.key)
        return json.loads(raw)

    def get(self) -> Roster:
        """The roster; parsed again only when the stored text changed."""
        raw = self.store.r.get(self.key)
        if raw is None:
            self.doc()
            raw = self.store.r.get(self.key)
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        if self._memo is None or self._memo[0] != text:
            self._memo = (text, Roster.from_doc(json.loads(text), self.tz))
        return self._memo[1]

    def put(self, doc: Any) -> Roster:
        """Validate and replace (RosterError when bad; nothing is written then)."""
        roster = Roster.from_doc(doc, self.tz)
        self.store.r.set(self.key, json.dumps(doc, ensure_ascii=False))
        return roster
