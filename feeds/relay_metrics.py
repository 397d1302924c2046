"""The relay's figures for `/metrics` (dashboard/ops/metrics.py): its walls, their queues,
resyncs and how far it trails the change log, written each second to its own hash so any
number of relays can run side by side."""

from __future__ import annotations

import os
import secrets
import socket
import time
from typing import Any

from dashboard.ops.metrics import Publisher
from dashboard.store import Store
from feeds.fanout import Fanout


class RelayMetrics:
    """`figures(fan)` on the event loop (the client set is the loop's: a thread iterating it
    could see it change size), then `publish(store, figures)` from a worker thread."""

    def __init__(self, process: str | None = None) -> None:
        self.publisher = Publisher("relay", process or
                                   f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}")
        # Resyncs are counted per client (Client.resyncs): those of walls that left are kept
        # here, so the total only grows. A resync in a wall's last second before it left is
        # not seen; the figure is a rate to watch, not a ledger.
        # (the client itself is held so its id is not reused by a new one meanwhile)
        self._seen: dict[int, tuple[Any, int]] = {}
        self._departed = 0

    def figures(self, fan: Fanout, now: float | None = None) -> dict[str, float]:
        now = time.monotonic() if now is None else now
        clients = list(fan.clients)
        lengths = [len(c.queue) for c in clients]
        oldest = max((now - c.queue[0][2] for c in clients if c.queue), default=0.0)
        buffered = [_buffered(c.ws) for c in clients]
        current = {id(c): (c, getattr(c, "resyncs", 0)) for c in clients}
        self._departed += sum(n for key, (_, n) in self._seen.items() if key not in current)
        self._seen = current
        return {
            "clients": len(clients),
            "queued_frames": sum(lengths),
            "queue_max_frames": max(lengths, default=0),
            "queue_oldest_seconds": round(max(0.0, oldest), 3),
            "clients_behind": sum(1 for c in clients if c.resync),
            "socket_buffer_bytes": sum(buffered),
            "socket_buffer_max_bytes": max(buffered, default=0),
            "resyncs_total": self._departed + sum(n for _, n in current.values()),
            "last_seq": fan.last_seq,
        }

    def publish(self, store: Store, figures: dict[str, float]) -> None:
        self.publisher.publish(store, figures)


def _buffered(ws: Any) -> int:
    """Bytes waiting in a socket's write buffer (the queue that matters once frames are
    written straight to the socket); 0 without a transport (tests, a closed socket)."""
    transport = getattr(ws, "transport", None)
    try:
        return int(transport.get_write_buffer_size()) if transport is not None else 0
    except (AttributeError, RuntimeError):
        return 0
