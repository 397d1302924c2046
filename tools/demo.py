"""The whole demo as a newcomer's first `make run` starts it, in a fresh data folder on free
ports, for tools that look at it from outside (tools/screenshots.py).

`python app.py` with no REDIS_URL (so its embedded Valkey), the simulator, the demo video,
ingest, relay, watch and web, its demo history and demo users; `Demo.start` returns once the
app has printed the wall's URL, `Demo.stop` stops it with SIGTERM as Ctrl-C would and makes
sure nothing it started is left running.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

import psutil

from dashboard.access.keyfile import DEMO_PASSWORD, secret_path
from dashboard.config import ROOT

URL_LINE: Final = re.compile(r"the wall is on (http://\S+)")
STOP_S: Final = 30  # app.py stops its children, then the embedded server, within seconds


class DemoError(RuntimeError):
    """The demo did not start (its log's tail says why) or did not stop cleanly."""


def free_ports(n: int, host: str = "127.0.0.1") -> int:
    """The first of `n` consecutive ports that are free now (the demo video server listens
    on a run of them)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind((host, 0))
            first = int(s.getsockname()[1])
        if first + n > 65535:
            continue
        try:
            held = []
            for port in range(first, first + n):
                s = socket.socket()
                held.append(s)
                s.bind((host, port))
            return first
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise DemoError(f"no {n} consecutive free ports")


class Demo:
    """`python app.py` in a temporary data folder; `history_days` None keeps the default
    (CC_DEMO_HISTORY_DAYS, as a newcomer gets it)."""

    def __init__(self, history_days: int | None = None, start_timeout_s: float = 600) -> None:
        self.history_days = history_days
        self.start_timeout_s = start_timeout_s
        self._tmp = tempfile.TemporaryDirectory(prefix="cc-demo-")
        self.data = Path(self._tmp.name)
        self.log_path = self.data / "app.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._started: dict[int, float] = {}  # pid → its start time (a pid may be reused)

    def start(self) -> str:
        """Start it and wait for the URL it prints; returns the URL."""
        port, ws_port, video = free_ports(1), free_ports(1), free_ports(4)
        env = {k: v for k, v in os.environ.items()
               if not (k.startswith("CC_") or k == "REDIS_URL")}  # a newcomer's settings
        env.update(CC_DATA_DIR=str(self.data), CC_SIM_VIDEO_PORT=str(video),
                   CC_SIM_VIDEO_SPREAD="4", PYTHONUNBUFFERED="1")
        if self.history_days is not None:
            env["CC_DEMO_HISTORY_DAYS"] = str(self.history_days)
        log = self.log_path.open("wb")
        # its own session: a Ctrl-C meant for this tool reaches app.py only through stop()
        self.proc = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(port), "--ws-port", str(ws_port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            self._note_children()
            found = URL_LINE.search(self.log_path.read_text(errors="replace"))
            if found:
                self.url = found.group(1).rstrip("/")
                return self.url
            if self.proc.poll() is not None:
                raise DemoError(f"app.py exited with {self.proc.returncode}:\n{self.tail()}")
            time.sleep(0.5)
        raise DemoError(f"no URL within {self.start_timeout_s:.0f} s:\n{self.tail()}")

    def password(self) -> str:
        """The demo users' password, made for this data folder."""
        return secret_path(self.data, DEMO_PASSWORD).read_text().strip()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _note_children(self) -> None:
        """Every process app.py started so far (its supervisor restarts some with new pids)."""
        if self.proc is None:
            return
        try:
            for p in psutil.Process(self.proc.pid).children(recursive=True):
                self._started.setdefault(p.pid, p.create_time())
        except psutil.Error:
            pass

    def stop(self) -> list[str]:
        """SIGTERM, as Ctrl-C; returns what was still running afterwards (killed then, by
        pid: only processes this demo started)."""
        left: list[str] = []
        if self.proc is not None:
            self._note_children()
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(STOP_S)
                except subprocess.TimeoutExpired:
                    left.append(f"app.py (pid {self.proc.pid})")
                    self.proc.kill()
                    self.proc.wait(5)
            deadline = time.monotonic() + 5
            for pid, born in sorted(self._started.items()):
                try:
                    child = psutil.Process(pid)
                    if child.create_time() != born:
                        continue  # ended, and its pid since given to another process
                    while child.is_running() and child.status() != psutil.STATUS_ZOMBIE \
                            and time.monotonic() < deadline:
                        time.sleep(0.1)
                    if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                        left.append(f"{child.name()} (pid {pid})")
                        child.kill()
                except psutil.NoSuchProcess:
                    continue
            self.proc = None
        self._tmp.cleanup()
        return left
