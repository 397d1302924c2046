"""JSON logs on request (issue 15 item 6): with CC_LOG_FORMAT=json every process of the stack
writes one JSON object a line, tracebacks included, configured in dashboard/ops/logs.py."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dashboard.config import ROOT, Settings
from feeds.redis_server import free_port

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens: every process says so in its log
KEYS = {"ts", "level", "logger", "message", "pid", "service"}


def _reader(proc: subprocess.Popen[str], lines: list[str]) -> threading.Thread:
    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _records(lines: list[str]) -> list[dict]:
    """Every line as its JSON object: a line that is not one fails the test."""
    out = []
    for line in lines:
        if not line.strip():
            continue
        record = json.loads(line)
        assert isinstance(record, dict) and set(record) >= KEYS, line
        assert dt.datetime.fromisoformat(record["ts"]).tzinfo is not None
        out.append(record)
    return out


def test_jsonlog001_every_process_logs_one_json_object_a_line(tmp_path: Path) -> None:
    """The app, ingest, relay, watch, the simulator and the demo video server, each started
    as in production with CC_LOG_FORMAT=json (Redis unreachable, so each has to speak)."""
    env = {**os.environ, "CC_LOG_FORMAT": "json", "REDIS_URL": DEAD_REDIS,
           "CC_DATA_DIR": str(tmp_path), "CC_WS_PORT": str(free_port()),
           "PYTHONUNBUFFERED": "1"}
    py = sys.executable
    commands = {
        "app": [py, "app.py", "--no-demo", "--port", str(free_port()),
                "--ws-port", str(free_port())],
        "ingest": [py, "-m", "feeds.ingest"],
        "relay": [py, "-m", "feeds.relay"],
        "watch": [py, "-m", "feeds.watch"],
        "simulator": [py, "-m", "feeds.simulator", "--duration", "2", "--warmup", "0"],
        "video": [py, "-m", "feeds.sim.video", "--port", str(free_port()), "--spread", "1"],
    }
    procs = {name: subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
             for name, argv in commands.items()}
    output: dict[str, list[str]] = {name: [] for name in procs}
    readers = [_reader(proc, output[name]) for name, proc in procs.items()]
    try:
        deadline = time.monotonic() + 60
        # every process has spoken, and ingest has said why it waits (its first line is
        # "starting": on a loaded machine the Redis warning comes a moment later)
        while time.monotonic() < deadline and not (
                all(output.values()) and any("Redis" in line for line in output["ingest"])):
            time.sleep(0.2)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for reader in readers:
            reader.join(5)
    for name, lines in output.items():
        records = _records(lines)
        assert records, f"{name} wrote nothing"
        assert procs[name].pid in {r["pid"] for r in records}, name
        # the app's output may hold its children's lines too, each naming its own service
        own = {r["service"] for r in records if r["pid"] == procs[name].pid}
        assert own == {name}, name
        assert {r["service"] for r in records} <= set(commands), name
    assert any("Redis" in r["message"] for r in _records(output["ingest"]))


def test_jsonlog002_tracebacks_stay_in_their_line(tmp_path: Path) -> None:
    """`exc` carries the traceback (logged, or uncaught in a thread) on one line; the text
    format stays the default."""
    script = (
        "import logging, threading\n"
        "from dashboard.ops import logs\n"
        "logs.configure(__import__('sys').argv[1], 'probe')\n"
        "log = logging.getLogger('cc.probe')\n"
        "log.info('line one\\nline two 中文')\n"
        "logging.getLogger('cc.colour').info('\\x1b[35m\\x1b[1mGET / HTTP/1.1\\x1b[0m 200')\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    log.exception('division failed')\n"
        "t = threading.Thread(target=lambda: {}['missing'], name='worker')\n"
        "t.start(); t.join()\n"
    )
    run = subprocess.run([sys.executable, "-c", script, "json"], cwd=ROOT, text=True,
                         capture_output=True, timeout=60, check=True)
    records = _records(run.stderr.splitlines())
    assert [r["level"] for r in records] == ["INFO", "INFO", "ERROR", "CRITICAL"]
    assert records[0]["message"] == "line one\nline two 中文"
    assert records[1]["message"] == "GET / HTTP/1.1 200"  # no terminal colours
    assert records[2]["message"] == "division failed"
    assert "Traceback" in records[2]["exc"] and "ZeroDivisionError" in records[2]["exc"]
    assert "worker" in records[3]["message"] and "KeyError" in records[3]["exc"]
    assert all(r["service"] == "probe" and r["logger"].startswith("cc.") for r in records)

    run = subprocess.run([sys.executable, "-c", script, "text"], cwd=ROOT, text=True,
                         capture_output=True, timeout=60)
    first = run.stderr.splitlines()[0]
    assert " INFO cc.probe line one" in first and not first.startswith("{")


def test_jsonlog003_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CC_LOG_FORMAT", raising=False)
    assert Settings.from_env().log_format == "text"
    monkeypatch.setenv("CC_LOG_FORMAT", "JSON")
    assert Settings.from_env().log_format == "json"
    monkeypatch.setenv("CC_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="CC_LOG_FORMAT"):
        Settings.from_env()
