"""Logging for every process of the stack, configured here and nowhere else: the app, ingest,
relay, watch, the simulator and the demo video server call `configure` once at start.

`CC_LOG_FORMAT=text` (default) writes `time LEVEL logger message`; `json` writes one JSON
object a line — `ts` (UTC, ISO 8601, milliseconds), `level`, `logger`, `message`, `pid`, the
process's `service`, and `exc` with the traceback when there is one — for a log shipper.
In JSON, an exception nobody caught (main thread or another) is logged as one such line
too, rather than as a bare traceback the shipper would cut into many.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import threading
from types import TracebackType
from typing import Any, Final

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Terminal colours (Werkzeug's request lines have them even into a pipe): no use to a shipper
ANSI: Final = re.compile(r"\x1b\[[0-9;]*m")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in a message or a traceback are
    escaped by JSON itself)."""

    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": ANSI.sub("", record.getMessage()),
            "pid": record.process,
        }
        if self.service:
            out["service"] = self.service
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure(log_format: str = "text", service: str = "", level: int = logging.INFO) -> None:
    """Set the root logger's one handler (stderr) for this process; `service` names it in
    JSON lines. Called again, it replaces the handler rather than adding a second."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    if log_format == "json":
        sys.excepthook = _log_uncaught
        threading.excepthook = _log_uncaught_thread


def _log_uncaught(kind: type[BaseException], exc: BaseException,
                  tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("cc.uncaught").critical("uncaught %s: %s", kind.__name__, exc,
                                              exc_info=(kind, exc, tb))


def _log_uncaught_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("cc.uncaught").critical(
        "uncaught %s in thread %s: %s", args.exc_type.__name__, name, args.exc_value,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
