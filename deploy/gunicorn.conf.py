"""gunicorn's settings for the wall's HTTP side: `make run` (a child of feeds/supervisor.py),
the systemd unit and the container all start it with `-c deploy/gunicorn.conf.py`.

    gunicorn -c deploy/gunicorn.conf.py 'app:create_server()'

It listens on CC_HOST:CC_PORT (a `--bind` on the command line wins) with CC_WEB_WORKERS
processes of CC_WEB_THREADS threads each (gthread: a request that waits on Redis holds a
thread, not a process; idle keep-alive connections hold neither).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The checkout this file belongs to: gunicorn imports `app` from there whatever the current
# directory (systemd, the container), and so does this file's own import below.
_root = str(Path(__file__).resolve().parent.parent)
if _root not in sys.path:
    sys.path.insert(0, _root)

from dashboard.config import Settings  # noqa: E402  (needs the path above)

_settings = Settings.from_env()
_host = f"[{_settings.host}]" if ":" in _settings.host else _settings.host

chdir = _root
bind = [f"{_host}:{_settings.port}"]
worker_class = "gthread"
workers = _settings.web_workers
threads = _settings.web_threads
# Ctrl-C and SIGTERM stop the stack "within a few seconds": the supervisor waits 5 s for a
# child before SIGKILL, so requests in flight get 4 (none of the app's runs longer).
graceful_timeout = 4
# A worker silent this long is killed and replaced (the cockpit's export is the slowest).
timeout = 60
# nginx keeps idle upstream connections open for a while (deploy/nginx/command-wall.conf).
keepalive = 15
# X-Forwarded-* is CC_TRUSTED_PROXIES' business (werkzeug's ProxyFix in the app): gunicorn
# believing them from 127.0.0.1 by default would let any local client claim HTTPS.
forwarded_allow_ips = ""
# Several servers on one host (make run's, the systemd template's instances) would share the
# default control socket in the home directory: none is needed.
control_socket_disable = True
# The workers' heartbeat files: a RAM disk when there is one (containers' /tmp may be a
# slow overlay, and a blocked heartbeat write gets a healthy worker killed).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
errorlog = "-"
accesslog = None  # the audit trail records what matters; nginx logs every request
proc_name = "command-wall-web"
