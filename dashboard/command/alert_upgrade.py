"""Alerts raised before they carried every language (`texts` and `feed`), given them.

Such an alert holds only `message`, written in the center's language from one of the
table's templates (`alert.*`). Where the message still reads as one of its kind's templates
and every product word in it (a level, an event type, a grid's name) is found again, the
alert gets the `texts` and `feed` the watch service would give it now, so every page shows
it in its own language. What cannot be read back so (a deadline card's durations, a text
from another version) keeps its `message`, which the pages then mark as the data it is
(`alert_segments`, `cc.setAlertText`): never a half-translated line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Final

from dashboard.city import City
from dashboard.command.alerts import AlertBusy, AlertNotFound, Alerts, alert_texts, fill
from dashboard.i18n import LANGS, known_keys, t
from dashboard.models import SEVERITIES

log = logging.getLogger("cc.alerts")

# The templates each kind's message was made from (feeds/watch/: alarms, loop, geofence).
# Deadline cards (sla_*) are left out on purpose: their durations are not read back.
TEMPLATES: Final[dict[str, tuple[str, ...]]] = {
    "critical_event": ("alert.critical_event", "alert.rejected", "alert.need_support"),
    "sos": ("alert.sos_event", "alert.sos"),
    "geofence_exit": ("alert.geofence_exit",),
}
FEED_PARTS: Final = frozenset({"name"})  # always the feed's words (a person's own name)


def _pattern(template: str) -> re.Pattern[str]:
    """The template as a regex, each `{part}` a named group."""
    out, seen = [], set()
    for i, piece in enumerate(re.split(r"\{(\w+)\}", template)):
        if i % 2 == 0:
            out.append(re.escape(piece))
        elif piece in seen:
            out.append(f"(?P={piece})")
        else:
            seen.add(piece)
            out.append(f"(?P<{piece}>.+?)")
    return re.compile("".join(out), re.S)


_WORDS: dict[tuple[str, str], dict[str, dict[str, dict[str, str]]]] = {}


def _product_words(city: City, lang: str) -> dict[str, dict[str, dict[str, str]]]:
    """For each product part, its words in `lang` → the same in every language (made once
    per city and language)."""
    found = _WORDS.get((city.code, lang))
    if found is not None:
        return found
    levels = {t("sev.level", lang, roman=s.roman):
              {lg: t("sev.level", lg, roman=s.roman) for lg in LANGS} for s in SEVERITIES.values()}
    types = {t(key, lang): {lg: t(key, lg) for lg in LANGS}
             for key in sorted(known_keys()) if key.startswith("type.")}
    units = {u.label(lang): {lg: u.label(lg) for lg in LANGS}
             for u in (*city.towns, *city.communities, *city.grids)}
    found = _WORDS[(city.code, lang)] = {"level": levels, "title": types, "grid": units,
                                         "here": units}
    return found


def legacy_texts(alert: Mapping[str, Any], city: City,
                 lang: str) -> tuple[dict[str, str], dict[str, str]] | None:
    """(`texts`, `feed`) for an alert whose `message` was written in `lang`, or None when it
    cannot be read back whole. The result, filled in `lang`, gives the message exactly."""
    message = alert.get("message")
    if not isinstance(message, str) or not message:
        return None
    words = _product_words(city, lang)
    for key in TEMPLATES.get(str(alert.get("kind")), ()):
        m = _pattern(t(key, lang)).fullmatch(message)
        if m is None:
            continue
        feed: dict[str, str] = {}
        parts: dict[str, Any] = {}
        for name, value in m.groupdict().items():
            if name in FEED_PARTS:
                feed[name] = value
            elif name == "task":
                parts[name] = value  # an id: the same in every language
            elif value in words.get(name, {}):
                parts[name] = words[name][value]
            elif name == "title":
                feed[name] = value  # the event's own title
            else:
                parts = {}
                break
        else:
            texts = alert_texts(key, feed, **parts)
            if fill(texts[lang], feed) == message:
                return texts, feed
    return None


def upgrade_alerts(alerts: Alerts, city: City, lang: str) -> int:
    """Give every stored alert without `texts` the ones its message reads back to (each a
    compare-and-set, so walls follow through the change log); returns how many changed.
    `lang` is the center's language, the one old messages were written in."""
    store = alerts.store
    changed = 0

    def change(alert: dict[str, Any]) -> dict[str, Any] | None:
        if alert.get("texts"):
            return None
        # the center's language first: a message is in the one it had when it was raised
        for lg in (lang, *(x for x in LANGS if x != lang)):
            found = legacy_texts(alert, city, lg)
            if found is not None:
                return {**alert, "texts": found[0], "feed": found[1]}
        return None

    for alert_id, raw in store.r.hscan_iter(store.key("state:alert")):
        if '"texts"' in _text(raw):
            continue
        try:
            if alerts.update(_text(alert_id), change).get("texts"):
                changed += 1
        except (AlertNotFound, AlertBusy) as exc:  # dropped or busy meanwhile: next start
            log.info("alert %s not upgraded: %r", _text(alert_id), exc)
    if changed:
        log.info("alerts: %d old alert(s) given every language's text", changed)
    return changed


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
