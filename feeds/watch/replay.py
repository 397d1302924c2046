"""The replay history's part of the watch (dashboard/replay/, docs/REPLAY.md): every log
entry, of every kind, goes to the recorder in order, before the capped log drops it; the
tick closes finished minutes and takes a keyframe every 10 minutes.

On attach the recorder reads where the history stops (`Preplay:cursor`) and the entries
between there and the watch's own cursor are offered again from the log (a crash loses
only what was gathered in memory, and the log still holds it)."""

from __future__ import annotations

import logging
from typing import Final

from dashboard.replay.recorder import Recorder
from feeds.watch.context import Context, Handler

log = logging.getLogger("cc.watch")

CATCH_UP_BLOCK: Final = 2000


class HistoryWriter(Handler):
    def __init__(self) -> None:
        self.recorder: Recorder | None = None
        self.held = False  # `hold`: nothing recorded until `resume`

    def hold(self) -> None:
        """Record nothing until `resume`: the demo's past older than the replay's window
        (feeds/sim/history.py) would be written only to expire unseen."""
        self.held = True

    def resume(self, after: int) -> None:
        """Record again, from the entry after `after` on (the entries held back are no part
        of the history, and the watch's next attach does not offer them again)."""
        self.held = False
        self._recorder().start_after(after, int(self.ctx.clock()))

    def attach(self, ctx: Context) -> None:
        super().attach(ctx)
        self.recorder = Recorder(ctx.store, ctx.settings.replay_days)
        self.recorder.position()

    def catch_up(self, upto: int) -> None:
        """Offer again what the log holds after the history's cursor, up to `upto` (the
        watch's cursor: what comes after is offered as the watch reads it)."""
        recorder = self._recorder()
        store = self.ctx.store
        while recorder.seq < upto:
            entries = store.log_since(recorder.seq, min(CATCH_UP_BLOCK, upto - recorder.seq))
            if not entries:
                break
            if entries[0][0] > recorder.seq + 1:
                log.warning("replay history: log trimmed past its cursor, %d entries lost",
                            entries[0][0] - recorder.seq - 1)
            for seq, kind, op, data in entries:
                if seq > upto:
                    return
                recorder.offer(seq, kind, op, data, int(self.ctx.clock()))

    def record(self, seq: int, kind: str, op: str, data: str) -> None:
        if self.held:
            return
        try:
            self._recorder().offer(seq, kind, op, data, int(self.ctx.clock()))
        except (ValueError, TypeError) as exc:  # one bad entry must not stop the history
            # (the handlers count it as an error; counted once)
            log.warning("replay history: log entry %d (%s) skipped: %r", seq, kind, exc)

    def tick(self, now: int) -> int:
        if not self.held:
            self._recorder().tick(now)
        return 0

    def _recorder(self) -> Recorder:
        assert self.recorder is not None, "attach() first"
        return self.recorder
