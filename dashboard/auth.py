"""Users, password hashes, sessions and display tokens in Redis (docs/COMMAND-LOOP.md).

Keys (prefix P): `Puser:{name}` hash (`role`, `scope`, `pw`, `created`, `updated`,
`display`), `Psession:{token}` hash with a sliding TTL, `Pdisplay:{sha256(token)}` → user
name, and `Plogin:fail:{name}:{ip}` (failed log-ins in the current 15-minute window).

Passwords are hashed with scrypt (`scrypt$n$r$p$salt_hex$hash_hex`) and compared in
constant time. A display user's token signs a kiosk in read-only: only its SHA-256 is stored,
so a Redis dump does not hand out wall sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Final

import redis

from dashboard.config import Settings

ROLES: Final = ("commander", "duty_officer", "leader", "display")
# What each role may also do: a commander may do whatever a duty officer does.
IMPLIES: Final[dict[str, tuple[str, ...]]] = {"commander": ("duty_officer",)}
SCOPE_LEVELS: Final = ("town", "community", "grid")

NAME_RE: Final = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
PASSWORD_MAX: Final = 1024
# scrypt cost: ~16 MiB and some 50 ms per hash, so guessing is slow and log-in is not.
SCRYPT_N: Final = 2**14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
SALT_BYTES: Final = 16
HASH_BYTES: Final = 32
THROTTLE_WINDOW_S: Final = 15 * 60
TOKEN_BYTES: Final = 32


class AuthError(ValueError):
    """A user record that cannot be stored (bad name, role, scope or password)."""


@dataclass(frozen=True)
class Session:
    token: str
    user: str
    role: str
    scope: str | None

    def may(self, *roles: str) -> bool:
        """True when this session's role is one of `roles`, directly or by implication."""
        if not roles:
            return True
        mine = (self.role, *IMPLIES.get(self.role, ()))
        return any(role in mine for role in roles)

    def to_dict(self) -> dict[str, str | None]:
        return {"user": self.user, "role": self.role, "scope": self.scope}


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R,
                  p: int = SCRYPT_P) -> str:
    """`scrypt$n$r$p$salt_hex$hash_hex` with a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=HASH_BYTES,
                            maxmem=256 * r * n)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of `password` against a stored hash; False for any bad record."""
    try:
        algo, n_s, r_s, p_s, salt_hex, hash_hex = stored.split("$")
        n, r, p = int(n_s), int(r_s), int(p_s)
        salt, expected = bytes.fromhex(salt_hex), bytes.fromhex(hash_hex)
    except (AttributeError, ValueError):
        return False
    # a damaged record must neither match easily (a short hash) nor cost minutes (huge n)
    if algo != "scrypt" or len(expected) != HASH_BYTES or len(salt) < 8 or \
            not (2 <= n <= 2**20 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
        return False
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=HASH_BYTES,
                            maxmem=256 * r * n)
    return hmac.compare_digest(digest, expected)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# A password check against this keeps a log-in for an unknown user as slow as for a known one,
# so timing does not tell which names exist.
_DUMMY_HASH: Final = hash_password(secrets.token_hex(8))


class Auth:
    """The user and session store; the Flask side calls it with plain values."""

    def __init__(self, client: redis.Redis, prefix: str, settings: Settings) -> None:
        self.r = client
        self.prefix = prefix
        self.settings = settings
        self._scopes: frozenset[str] | None = None

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    # -- users --------------------------------------------------------------------------

    def validate(self, name: str, role: str, scope: str | None) -> None:
        """Raise AuthError with a clear reason for a bad name, role or scope code."""
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise AuthError("user name: 1-64 characters of A-Z a-z 0-9 _ . @ -")
        if role not in ROLES:
            raise AuthError(f"role must be one of {', '.join(ROLES)}")
        if scope is not None and scope not in self.scopes():
            raise AuthError(f"scope {scope!r} is not a town, community or grid code of "
                            f"{self.settings.city}")

    def scopes(self) -> frozenset[str]:
        """Every code a user may be limited to: the city's towns, communities and grids."""
        if self._scopes is None:
            from dashboard.city import load_city

            city = load_city(self.settings.city)
            self._scopes = frozenset(u.code for u in (*city.towns, *city.communities,
                                                      *city.grids))
        return self._scopes

    def add_user(self, name: str, role: str, password: str, scope: str | None = None) -> None:
        """Create or update a user. An update signs the user out everywhere."""
        scope = scope or None
        self.validate(name, role, scope)
        if not isinstance(password, str) or not password or len(password) > PASSWORD_MAX:
            raise AuthError(f"password: 1-{PASSWORD_MAX} characters")
        self._store_user(name, role, scope, hash_password(password))

    def _store_user(self, name: str, role: str, scope: str | None, pw: str) -> None:
        key = self.key("user", name)
        now = str(_now_ms())
        existed = bool(self.r.exists(key))
        pipe = self.r.pipeline()
        pipe.hset(key, mapping={"role": role, "scope": scope or "", "pw": pw, "updated": now})
        pipe.hsetnx(key, "created", now)
        pipe.execute()
        if existed:
            self.revoke_sessions(name)

    def add_display(self, name: str, scope: str | None = None) -> str:
        """Create or update a display user and give it a fresh token (the old one stops
        working). The token is returned once; only its hash is stored."""
        scope = scope or None
        self.validate(name, "display", scope)
        key = self.key("user", name)
        old = self.r.hget(key, "display")
        if not self.r.exists(key) or self.r.hget(key, "role") != "display":
            # a display user has no password unless one is set with add_user later
            self._store_user(name, "display", scope, "")
        else:
            self.r.hset(key, mapping={"scope": scope or "", "updated": str(_now_ms())})
            self.revoke_sessions(name)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        digest = token_hash(token)
        pipe = self.r.pipeline()
        if old:
            pipe.delete(self.key("display", old))
        pipe.set(self.key("display", digest), name)
        pipe.hset(key, "display", digest)
        pipe.execute()
        return token

    def user(self, name: str) -> dict[str, str] | None:
        """The stored user without its hash; None when unknown."""
        if not isinstance(name, str) or not NAME_RE.match(name):
            return None
        found = self.r.hgetall(self.key("user", name))
        if not found:
            return None
        return {k: v for k, v in found.items() if k not in ("pw", "display")}

    def check_password(self, name: str, password: str) -> bool:
        """True when `name` exists and `password` is its password (no session, no throttle)."""
        stored = self.r.hget(self.key("user", name), "pw") if NAME_RE.match(name) else None
        return bool(stored) and verify_password(password, stored or "")

    def display_user(self, token: str) -> str | None:
        """The display user a token belongs to, or None."""
        if not isinstance(token, str) or not token:
            return None
        name = self.r.get(self.key("display", token_hash(token)))
        return name if name and self.r.hget(self.key("user", name), "role") == "display" else None

    # -- log-in -------------------------------------------------------------------------

    def throttled(self, name: str, ip: str) -> bool:
        """True when this user name has failed `login_max_failures` times from `ip` within
        the last 15 minutes."""
        count = self.r.get(self._fail_key(name, ip))
        return int(count or 0) >= self.settings.login_max_failures

    def _fail_key(self, name: str, ip: str) -> str:
        # the name is hashed so any string a client sends makes a short, safe key
        return self.key("login", "fail", token_hash(f"{name}\x00{ip}")[:32])

    def login(self, name: str, password: str, ip: str) -> Session | None:
        """A new session for the right password; None when wrong, unknown or throttled."""
        if not isinstance(name, str) or not isinstance(password, str):
            return None
        if self.throttled(name, ip):
            return None
        found = self.r.hgetall(self.key("user", name)) if NAME_RE.match(name) else {}
        stored = found.get("pw") or ""
        ok = verify_password(password[:PASSWORD_MAX], stored or _DUMMY_HASH) and bool(stored)
        if not ok:
            fail = self._fail_key(name, ip)
            pipe = self.r.pipeline()
            pipe.incr(fail)
            pipe.expire(fail, THROTTLE_WINDOW_S, nx=True)
            pipe.execute()
            return None
        self.r.delete(self._fail_key(name, ip))
        return self._new_session(name, found["role"], found.get("scope") or None, ip)

    def display_login(self, token: str, ip: str) -> Session | None:
        """A read-only session for a display token; None when the token is unknown."""
        if not isinstance(token, str) or not 16 <= len(token) <= 256:
            return None
        name = self.display_user(token)
        if name is None:
            return None
        scope = self.r.hget(self.key("user", name), "scope") or None
        return self._new_session(name, "display", scope, ip)

    def _new_session(self, name: str, role: str, scope: str | None, ip: str) -> Session:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        key = self.key("session", token)
        pipe = self.r.pipeline()
        pipe.hset(key, mapping={"user": name, "role": role, "scope": scope or "", "ip": ip,
                                "created": str(_now_ms())})
        pipe.expire(key, self.settings.session_ttl_s)
        pipe.execute()
        return Session(token, name, role, scope)

    # -- sessions -----------------------------------------------------------------------

    def session(self, token: str) -> Session | None:
        """The live session for `token`, its TTL slid forward; None when absent/expired."""
        if not isinstance(token, str) or not 16 <= len(token) <= 256:
            return None
        key = self.key("session", token)
        pipe = self.r.pipeline()
        pipe.hgetall(key)
        pipe.expire(key, self.settings.session_ttl_s, xx=True)
        found, _ = pipe.execute()
        if not found or found.get("role") not in ROLES:
            return None
        return Session(token, found["user"], found["role"], found.get("scope") or None)

    def logout(self, token: str) -> None:
        if isinstance(token, str) and token:
            self.r.delete(self.key("session", token))

    def revoke_sessions(self, name: str) -> int:
        """End every session of `name` (after a password or role change); returns how many.

        A scan over sessions: rare (an admin changed a user) and there are few sessions.
        """
        gone = 0
        for key in self.r.scan_iter(match=self.key("session", "*"), count=500):
            if self.r.hget(key, "user") == name:
                gone += int(self.r.delete(key))
        return gone


def _now_ms() -> int:
    return int(time.time() * 1000)
