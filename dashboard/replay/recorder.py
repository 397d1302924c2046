"""Writing the replay history (dashboard/replay/history.py has the format), for the watch
service: every log entry is offered in order; a minute's kept entries are written as one
compressed segment once the minute is over (by the entries' stamps or by the clock); a
keyframe is taken every KEYFRAME_MS while the recorder is caught up with the log.

What was offered but not yet written is lost on a crash only in memory: `Preplay:cursor`
says which entry was written last, and the watch offers again what came after it
(`position`), so nothing the log still holds is skipped.
"""

from __future__ import annotations

import logging
from typing import Final

import orjson
import redis

from dashboard.replay import history as h
from dashboard.store import Store

log = logging.getLogger("cc.watch")

CAUGHT_UP: Final = 2000  # entries behind the log at most, for a keyframe to be taken
LATE_MS: Final = 3 * h.KEYFRAME_MS  # ... unless the last one is this old


class Recorder:
    """The history's writer over one Store (its client may decode responses: only bytes it
    made are read back, with NEVER_DECODE)."""

    def __init__(self, store: Store, days: int) -> None:
        self.store = store
        self.prefix = store.prefix
        self.ttl = h.ttl_s(days)
        self.days = days
        self.thinner = h.Thinner()
        self.minute = -1  # the minute being gathered
        self.lines: list[tuple[str, str, int, bytes]] = []  # (kind, id, seq, line)
        self.seq = 0  # the last entry offered
        self.t = 0  # its stamp
        self.written = 0  # the last entry written
        self.last_keyframe = 0
        self.keyframes = 0
        self.cameras: tuple[int, int, list[str]] | None = None  # (t, seq, blocks) taken last

    def position(self) -> int:
        """Where the history stops (the last seq written); reads `Preplay:cursor`."""
        raw = self.store.r.get(h.cursor_key(self.prefix))
        text = raw.decode() if isinstance(raw, bytes) else (raw or "")
        seq, _, t = text.partition("|")
        self.written = self.seq = int(seq) if seq.isdigit() else 0
        self.t = int(t) if t.isdigit() else 0
        self.thinner.clear()
        self.minute, self.lines = -1, []
        self.cameras = None  # the next keyframe takes them anew
        newest = self.store.r.zrevrange(h.keys_key(self.prefix), 0, 0)
        self.last_keyframe = int(newest[0]) if newest else 0
        return self.written

    def start_after(self, seq: int, t: int) -> None:
        """The history begins after entry `seq`, at `t`: what came before is skipped (the
        cursor says so, so no restart offers it again)."""
        self.close_minute()
        self.seq = self.written = max(self.seq, seq)
        self.t = max(self.t, t)
        self.store.r.set(h.cursor_key(self.prefix), f"{self.seq}|{self.t}")

    def offer(self, seq: int, kind: str, op: str, data: str | bytes, now: int) -> None:
        """One log entry, in log order (entries at or before the cursor are ignored)."""
        if seq <= self.seq:
            return
        self.seq = seq
        if kind not in h.KINDS:
            return
        raw = data.encode() if isinstance(data, str) else data
        record = orjson.loads(raw)
        if not isinstance(record, dict):
            return
        t = h.stamp(kind, record, now, self.t)
        self.t = t
        minute = t // h.MINUTE_MS
        if minute != self.minute:
            self.close_minute()
            self.minute = minute
        if kind in h.UNIT_KINDS:
            kept = self.thinner.offer(seq, t, kind, record)
            if kept is None:
                return
            if kept is not record:
                raw, op = orjson.dumps(kept), "move"
        self.lines.append((kind, str(record.get("id")), seq, h.line(seq, t, kind, op, raw)))

    def close_minute(self) -> None:
        """Write the minute gathered so far (its held moves first kept), then start over."""
        if self.minute < 0:
            return
        end = (self.minute + 1) * h.MINUTE_MS
        for seq, t, kind, record in self.thinner.release(end):
            self.lines.append((kind, str(record.get("id")), seq,
                               h.line(seq, t, kind, "move", orjson.dumps(record))))
        if self.lines:
            self.lines.sort(key=lambda x: x[:3])  # by entity: see history.segment
            pipe = self.store.r.pipeline(transaction=True)
            key = h.minute_key(self.prefix, self.minute)
            pipe.append(key, h.segment([line for *_, line in self.lines]))
            pipe.expire(key, self.ttl)
            pipe.set(h.cursor_key(self.prefix), f"{self.seq}|{self.t}")
            pipe.execute()
        else:
            self.store.r.set(h.cursor_key(self.prefix), f"{self.seq}|{self.t}")
        self.written = self.seq
        self.lines = []
        self.minute = -1

    def tick(self, now: int) -> None:
        """The clock's part: a minute the clock has left is complete (stamps never exceed
        the clock); a keyframe when one is due and the log is not far ahead."""
        if self.minute >= 0 and now // h.MINUTE_MS > self.minute:
            self.close_minute()
        due = now - self.last_keyframe
        # behind the log, the snapshot would be ahead of the entries' stamps: wait for the
        # watch to catch up, but not for ever (a picture a little early beats none)
        if due >= h.KEYFRAME_MS and (due >= LATE_MS or
                                     self.store.seq() - self.seq <= CAUGHT_UP):
            self.keyframe(now)

    def keyframe(self, now: int) -> int:
        """The wall's snapshot now, as content-addressed blocks; returns its log seq."""
        parts = self.store.snapshot_parts(now)
        for kind in h.UNIT_KINDS:  # what the units are now: their re-reports are thinned
            self.thinner.seed_all(kind, parts[kind + "s"], now)
        heads: dict[str, list[str]] = {}
        base: dict[str, list[int]] = {}
        made: list[tuple[str, bytes | None]] = []
        for name in h.LISTS:
            if name == "cameras" and self.cameras and now - self.cameras[0] < h.CAMERAS_EVERY_MS:
                heads[name] = self.cameras[2]  # the hour's, and the camera entries since
                base[name] = [self.cameras[0], self.cameras[1]]
                made.extend((digest, None) for digest in self.cameras[2])
                continue
            pairs = h.blocks(parts[name])
            heads[name] = [digest for digest, _ in pairs]
            made.extend(pairs)
            if name == "cameras":
                self.cameras = (now, int(parts["seq"]), heads[name])
        r = self.store.r
        pipe = r.pipeline(transaction=False)
        for digest, _ in made:  # a block some keyframe already stored lives on
            pipe.expire(h.block_key(self.prefix, digest), self.ttl)
        found = pipe.execute()
        pipe = r.pipeline(transaction=False)
        for (digest, data), exists in zip(made, found, strict=True):
            if not exists and data is not None:
                pipe.set(h.block_key(self.prefix, digest), h.pack(data), ex=self.ttl)
        head = orjson.dumps({"t": now, "seq": parts["seq"], "blocks": heads, "base": base})
        pipe.set(h.frame_key(self.prefix, now), head, ex=self.ttl)
        index = h.keys_key(self.prefix)
        pipe.zadd(index, {str(now): now})
        pipe.zremrangebyscore(index, "-inf", now - self.ttl * 1000)
        pipe.expire(index, self.ttl)
        pipe.execute()
        self.last_keyframe = now
        self.keyframes += 1
        # what comes after the keyframe's seq is stamped at or after it
        self.t = max(self.t, now)
        return int(parts["seq"])

    def close(self) -> None:
        """Write what is gathered (a clean stop)."""
        try:
            self.close_minute()
        except (redis.RedisError, OSError) as exc:  # the cursor makes it come again
            log.warning("replay history: the last minute was not written: %s", exc)

