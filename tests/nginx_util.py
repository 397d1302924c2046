"""Debian's nginx run by a test as the current user: deploy/nginx's own site and locations,
rendered for loopback (its ports, a -p prefix with the pid, logs and temp folders under the
test's folder). `make test` installs nginx (scripts/ensure-nginx.sh)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from dashboard.config import ROOT

DEPLOY = ROOT / "deploy"
SITE = DEPLOY / "nginx" / "command-wall.conf"
TLS_SITE = DEPLOY / "nginx" / "command-wall-tls.conf"
LOCATIONS = DEPLOY / "nginx" / "command-wall-locations.conf"
SNIPPET = "/etc/nginx/snippets/command-wall-locations.conf"


def nginx_binary() -> str | None:
    """nginx on PATH, or Debian's (a user's PATH often lacks /usr/sbin)."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


# in CI a missing nginx must fail loudly, not skip (as the browser tests' chromium)
needs_nginx = pytest.mark.skipif(nginx_binary() is None and not os.environ.get("CI"),
                                 reason="nginx missing: run scripts/ensure-nginx.sh")


def _servers(text: str, upstream: str, ports: list[int]) -> str:
    """The `upstream` block with one `server` line per port, each with the site's own
    parameters (max_fails, fail_timeout)."""
    block = re.search(rf"upstream {upstream} \{{.*?\n\}}", text, re.S)
    assert block, f"no upstream {upstream} in the site"
    first = re.search(r"^(\s*)server \S+ ?([^;]*);$", block.group(0), re.M)
    assert first, f"no server line in upstream {upstream}"
    indent, params = first.group(1), first.group(2)
    lines = "\n".join(f"{indent}server 127.0.0.1:{p} {params};" for p in ports)
    # ours where the site's first server line was (after least_conn and the comments)
    body = block.group(0).replace(first.group(0), "\0", 1)
    body = re.sub(r"^\s*server \S+[^;]*;\n", "", body, flags=re.M)
    return text.replace(block.group(0), body.replace("\0", lines, 1))


def render_site(port: int, web_ports: list[int], relay_ports: list[int]) -> str:
    """deploy/nginx/command-wall.conf on 127.0.0.1:`port` in front of these ports."""
    text = SITE.read_text(encoding="utf-8")
    text = _servers(_servers(text, "cc_web", web_ports), "cc_relay", relay_ports)
    text = text.replace("listen 80;", f"listen 127.0.0.1:{port};")
    text = re.sub(r"^\s*listen \[::\]:80;\n", "", text, flags=re.M)
    assert SNIPPET in text
    return text.replace(SNIPPET, str(LOCATIONS))


def render_tls(port: int, cert: Path, key: Path) -> str:
    """deploy/nginx/command-wall-tls.conf on 127.0.0.1:`port` with this certificate."""
    text = TLS_SITE.read_text(encoding="utf-8")
    text = text.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl http2;")
    text = re.sub(r"^\s*listen \[::\]:443 ssl http2;\n", "", text, flags=re.M)
    text = text.replace("/etc/ssl/command-wall/fullchain.pem", str(cert))
    text = text.replace("/etc/ssl/command-wall/privkey.pem", str(key))
    return text.replace(SNIPPET, str(LOCATIONS))


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (openssl), as an operator's would be."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def main_conf(folder: Path, sites: list[str]) -> Path:
    """nginx.conf for a -p `folder` prefix: pid, logs and temp folders in it, the sites
    inside its http block."""
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / "tmp" / name).mkdir(parents=True, exist_ok=True)
    (folder / "sites").mkdir(exist_ok=True)
    includes = []
    for i, text in enumerate(sites):
        path = folder / "sites" / f"site{i}.conf"
        path.write_text(text, encoding="utf-8")
        includes.append(f"    include {path};")
    # as root, nginx's workers would switch to `nobody`, who cannot enter pytest's folders
    user = "user root;\n" if os.geteuid() == 0 else ""
    tmp = folder / "tmp"
    conf = folder / "nginx.conf"
    conf.write_text(f"""{user}worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    access_log {folder}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{chr(10).join(includes)}
}}
""", encoding="utf-8")
    return conf


def check(folder: Path, conf: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on the configuration."""
    binary = nginx_binary()
    assert binary, "nginx missing: run scripts/ensure-nginx.sh"
    return subprocess.run([binary, "-t", "-p", str(folder), "-e", str(folder / "error.log"),
                           "-c", str(conf)], capture_output=True, text=True)


def start(folder: Path, conf: Path, port: int) -> subprocess.Popen[bytes]:
    """nginx in the foreground (daemon off) until stopped; waits until it listens."""
    binary = nginx_binary()
    assert binary, "nginx missing: run scripts/ensure-nginx.sh"
    log = (folder / "nginx.out").open("ab")
    proc = subprocess.Popen([binary, "-p", str(folder), "-e", str(folder / "error.log"),
                             "-c", str(conf)], stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                log_text = (folder / "error.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"nginx did not start: {log_text}") from exc
            time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGQUIT is nginx's graceful stop; it gets 5 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(2)
