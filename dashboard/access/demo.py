"""The demo's accounts: users made while the demo runs and disabled when it stops.

Each is marked `demo`, so a run without the demo (or production's `create_server`) disables
them; a real user with a demo user's name is left alone. The password is made once per data
folder and printed with the demo's banner, so no one knows it from the README.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Final

import redis

from dashboard.access.audit import Audit
from dashboard.access.auth import Auth
from dashboard.access.keyfile import DEMO_PASSWORD, secret, write_private
from dashboard.config import Settings

log = logging.getLogger("cc.app")

DEMO_USERS: Final = (("zhihui", "commander"), ("zhiban", "duty_officer"), ("lingdao", "leader"),
                     ("zhiban2", "duty_officer"))  # zhiban2: a second officer to accept a handover
DEMO_DISPLAY: Final = "wall"


def demo_password(settings: Settings) -> str:
    """The demo users' password: made once per data folder (it meets the password rule)."""
    return secret(settings.data_dir, DEMO_PASSWORD,
                  lambda: f"Demo-{secrets.token_hex(4)}")


def demo_sign_ins(settings: Settings, client: redis.Redis) -> None:
    """The demo's users and a kiosk URL for the wall, printed loudly."""
    auth = Auth(client, settings.prefix, settings)
    auth.enable_demo_users()  # disabled when the demo last stopped
    password = demo_password(settings)
    skipped = []
    for name, role in DEMO_USERS:
        found = auth.user(name)
        if found is not None and found.get("demo") != "1":
            skipped.append(name)
            continue
        if found is None or found.get("disabled") or found.get("role") != role or \
                not auth.check_password(name, password):
            auth.add_user(name, role, password, demo=True)
    # The kiosk token is kept in the data folder so the wall's URL survives a restart.
    token_file = Path(settings.data_dir) / "demo-kiosk-token"
    token = ""
    wall = auth.user(DEMO_DISPLAY)
    if wall is not None and wall.get("demo") != "1":
        skipped.append(DEMO_DISPLAY)
    else:
        token = token_file.read_text().strip() if token_file.exists() else ""
        if not token or auth.display_user(token) != DEMO_DISPLAY:
            token = auth.add_display(DEMO_DISPLAY, demo=True)
            write_private(token_file, token)
    bar = "=" * 72
    print(f"{bar}\nWARNING: demo credentials; never use them in production (CC_DEMO_USERS=0 "
          f"or --no-demo turns them off and disables them):", flush=True)
    for name, role in DEMO_USERS:
        if name not in skipped:
            print(f"  {name:<8} / {password}  {role}")
    if token:
        print(f"  kiosk (read-only wall): http://{settings.host}:{settings.port}/?display={token}")
    if skipped:
        print(f"  not made (a real user has the name): {', '.join(skipped)}")
    print(bar, flush=True)


def retire_demo_users(settings: Settings, client: redis.Redis) -> list[str]:
    """Without the demo, its users cannot sign in: disabled (password and kiosk token
    refused), their sessions ended. Returns the names disabled now."""
    gone = Auth(client, settings.prefix, settings).disable_demo_users()
    if gone:
        log.info("demo users disabled (they exist only while the demo runs): %s", ", ".join(gone))
        Audit.of(client, settings).write(
            user="-", role="-", action="demo.disable", target=",".join(gone), ip="cli",
            outcome="success", detail={"users": gone})
    return gone
