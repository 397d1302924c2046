"""The watch service: follows the change log and turns what happens into the command loop.

Run as `python -m feeds.watch`. One log follower (follower.py) tails `Plog` from
`Pwatch:cursor` (so a restart resumes where it stopped, and a log trimmed past the cursor
resumes at its first entry) and hands each entry to one handler per concern:

- loop.py: `feedback` → `Desk.on_feedback` (the task lifecycle: accepted, arrived, handled,
  …); a `task` whose stage became `rejected` / `need_support` → a `critical_event` alert;
- alarms.py: an open `event` of level I/II → one `critical_event` alert; a `worker` whose
  status became `sos` → one `sos` alert per episode;
- geofence.py: a `worker` on duty outside the grid assigned to them → one `geofence_exit`
  alert per exit (the episode is kept in `Pgeofence:out`, so a restart does not raise it
  again);
- patrol.py: the grids on-duty workers walk today (the cockpit's patrol coverage);
- tracks.py: a `worker` or `resource` position → its track (`Ptrack:*`,
  dashboard/archive/tracks.py), thinned and appended once per block; yesterday's compacted.

Every `watch_tick_s` the handlers' ticks run: cards.py asks `Deadlines.cards` about every
open event and raises `sla_yellow` / `sla_red` once per (event, stage, colour) and trims old
alerts; archiving.py moves closed events into the archive. Heartbeat in `Pwatch:hb` (ts,
cursor, lag). The clock is injectable, so tests decide what time it is.
"""

from __future__ import annotations

from feeds.watch.follower import BLOCK, Watch
from feeds.watch.geofence import GEOFENCE_SEVERITY

__all__ = ["BLOCK", "GEOFENCE_SEVERITY", "Watch"]
