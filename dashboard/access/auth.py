"""Users, password hashes, sessions and display tokens in Redis (docs/SECURITY.md).

Keys (prefix P): `Puser:{name}` hash (`role`, `scope`, `pw`, `created`, `updated`,
`display`, `demo`, `disabled`), `Psession:{sha256(token)}` hash with a sliding TTL,
`Pdisplay:{sha256(token)}` → user name, `Pusers:demo` (names the demo created) and the
log-in throttle's counters `Plogin:fail:{h(name, ip)}`, `Plogin:fail:ip:{h(ip)}`,
`Plogin:fail:user:{h(name)}` (attempts in the current 15-minute window).

Passwords are at least 10 characters of at least two classes (lower case, upper case,
digits, others), hashed with scrypt (`scrypt$n$r$p$salt_hex$hash_hex`) and compared in
constant time. Session and display tokens are stored only as their SHA-256: a Redis dump or
a `KEYS *` hands out no session. A log-in attempt is counted before its password is checked
(one Lua script: check the limits, then count), so parallel guesses cannot race past a
limit; a successful one takes its count back.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import redis

from dashboard import lua
from dashboard.config import Settings
from dashboard.connect import home_node

ROLES: Final = ("commander", "duty_officer", "leader", "display")
# What each role may also do: a commander may do whatever a duty officer does.
IMPLIES: Final[dict[str, tuple[str, ...]]] = {"commander": ("duty_officer",)}
SCOPE_LEVELS: Final = ("town", "community", "grid")

NAME_RE: Final = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
HEX64_RE: Final = re.compile(r"^[0-9a-f]{64}$")
PASSWORD_MIN: Final = 10
PASSWORD_CLASSES: Final = 2  # of: lower case, upper case, digits, anything else
PASSWORD_MAX: Final = 1024
PASSWORD_RULE: Final = (f"password: {PASSWORD_MIN}-{PASSWORD_MAX} characters with at least "
                        f"{PASSWORD_CLASSES} of: lower-case letters, upper-case letters, digits, "
                        "other characters")
# scrypt cost: ~16 MiB and some 50 ms per hash, so guessing is slow and log-in is not.
SCRYPT_N: Final = 2**14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
SALT_BYTES: Final = 16
HASH_BYTES: Final = 32
THROTTLE_WINDOW_S: Final = 15 * 60
TOKEN_BYTES: Final = 32
# Which limit a throttled attempt hit (the index the throttle script returns).
LIMITS: Final = ("user_ip", "ip", "user")

# KEYS[1..3]: the counters (user+address, address, user); ARGV[1]: window (s),
# ARGV[2..4]: their limits. Refuses (returns 1-3: the limit hit) without counting when one is
# reached, else counts the attempt in all three and returns 0. One script: atomic.
_COUNT: Final = lua.source(__file__, "login_count.lua")
# A successful log-in: its user+address counter is cleared, its count taken back from the
# address's and the name's (a busy office behind one address is not locked by its sign-ins).
_UNCOUNT: Final = lua.source(__file__, "login_uncount.lua")


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


@dataclass(frozen=True)
class Attempt:
    """What one log-in attempt came to: `outcome` is success, failure or throttled; `limit`
    the limit a throttled attempt hit; `reason` why a failure failed, for the audit only."""

    session: Session | None
    outcome: str
    limit: str | None = None
    reason: str | None = None


def password_problem(password: object) -> str | None:
    """Why `password` is too weak or malformed (the rule), or None when it is acceptable."""
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return PASSWORD_RULE
    classes = {"lower" if c.islower() else "upper" if c.isupper() else
               "digit" if c.isdigit() else "other" for c in password}
    return PASSWORD_RULE if len(classes) < PASSWORD_CLASSES else None


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
        self._count = client.register_script(_COUNT)
        self._uncount = client.register_script(_UNCOUNT)

    def key(self, *parts: str) -> str:
        if len(parts) == 2 and parts[0] == "session":
            # Whoever builds a session's key from its token (the relay's `_slide`, until it
            # calls `slide`) must get the hashed key: tokens themselves are never stored.
            return self.session_key(parts[1])
        return self.prefix + ":".join(parts)

    def session_key(self, token: str) -> str:
        return f"{self.prefix}session:{token_hash(token)}"

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

    def add_user(self, name: str, role: str, password: str, scope: str | None = None, *,
                 demo: bool = False) -> None:
        """Create or update a user (enabled again if it was disabled). An update signs the
        user out everywhere. `demo`: made by the demo, disabled when it no longer runs; a user
        saved without it is a real one, which the demo leaves alone."""
        scope = scope or None
        self.validate(name, role, scope)
        problem = password_problem(password)
        if problem:
            raise AuthError(problem)
        self._store_user(name, role, scope, hash_password(password), demo)

    def _store_user(self, name: str, role: str, scope: str | None, pw: str,
                    demo: bool = False) -> None:
        key = self.key("user", name)
        now = str(_now_ms())
        existed = bool(self.r.exists(key))
        pipe = self.r.pipeline()
        pipe.hset(key, mapping={"role": role, "scope": scope or "", "pw": pw, "updated": now})
        pipe.hsetnx(key, "created", now)
        pipe.hdel(key, "disabled")
        if demo:
            pipe.hset(key, "demo", "1")
            pipe.sadd(self.key("users", "demo"), name)
        else:
            pipe.hdel(key, "demo")
            pipe.srem(self.key("users", "demo"), name)
        pipe.execute()
        if existed:
            self.revoke_sessions(name)

    def add_display(self, name: str, scope: str | None = None, *, demo: bool = False) -> str:
        """Create or update a display user and give it a fresh token (the old one stops
        working). The token is returned once; only its hash is stored."""
        scope = scope or None
        self.validate(name, "display", scope)
        key = self.key("user", name)
        old = self.r.hget(key, "display")
        role, pw, was_demo, disabled = self.r.hmget(key, "role", "pw", "demo", "disabled")
        if role != "display" or bool(was_demo) != demo or disabled:
            # a display user has no password unless one is set with add_user (a user that was
            # something else loses its password: a kiosk does not sign in with one)
            self._store_user(name, "display", scope, (pw or "") if role == "display" else "",
                             demo)
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

    def is_demo(self, name: str) -> bool:
        """True for a user the demo made (and no one saved as a real user since)."""
        return NAME_RE.match(name) is not None and \
            self.r.hget(self.key("user", name), "demo") == "1"

    def _demo_names(self) -> list[str]:
        names = []
        for name in sorted(self.r.smembers(self.key("users", "demo"))):
            if self.r.hget(self.key("user", name), "demo") == "1":
                names.append(name)
            else:
                self.r.srem(self.key("users", "demo"), name)  # saved as a real user since
        return names

    def disable_demo_users(self) -> list[str]:
        """Disable every user the demo made (the demo is not running): their sign-ins and
        kiosk tokens fail, their sessions end. Real users are not touched, even one with a
        demo user's name. Returns the names disabled now."""
        done = []
        for name in self._demo_names():
            if self.r.hsetnx(self.key("user", name), "disabled", str(_now_ms())):
                done.append(name)
            self.revoke_sessions(name)
        return done

    def enable_demo_users(self) -> list[str]:
        """The demo runs again: its users may sign in (their kiosk token works again)."""
        done = []
        for name in self._demo_names():
            if self.r.hdel(self.key("user", name), "disabled"):
                done.append(name)
        return done

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
        if not name:
            return None
        role, disabled = self.r.hmget(self.key("user", name), "role", "disabled")
        return name if role == "display" and not disabled else None

    # -- log-in -------------------------------------------------------------------------

    def _fail_keys(self, name: str, ip: str) -> list[str]:
        # names and addresses are hashed so any string a client sends makes a short, safe key
        return [self.key("login", "fail", token_hash(f"{name}\x00{ip}")[:32]),
                self.key("login", "fail", "ip", token_hash(ip)[:32]),
                self.key("login", "fail", "user", token_hash(name)[:32])]

    def _limits(self) -> list[int]:
        s = self.settings
        return [s.login_max_failures, s.login_max_failures_ip, s.login_max_failures_user]

    def throttled(self, name: str, ip: str) -> bool:
        """True when a log-in as `name` from `ip` would now be refused: `login_max_failures`
        for the pair, `login_max_failures_ip` for the address or `login_max_failures_user`
        for the name, within 15 minutes."""
        counts = self.r.mget(self._fail_keys(name, ip))
        return any(int(c or 0) >= limit for c, limit in zip(counts, self._limits(),
                                                              strict=True))

    def attempt(self, name: str, password: str, ip: str) -> Attempt:
        """One log-in attempt: counted first (atomically, against all three limits), then
        the password checked, as slowly for an unknown name as for a known one."""
        if not isinstance(name, str) or not isinstance(password, str):
            return Attempt(None, "failure", reason="malformed")
        keys = self._fail_keys(name, ip)
        hit = int(self._count(keys=keys, args=[THROTTLE_WINDOW_S, *self._limits()]))
        if hit:
            return Attempt(None, "throttled", limit=LIMITS[hit - 1])
        found = self.r.hgetall(self.key("user", name)) if NAME_RE.match(name) else {}
        stored = found.get("pw") or ""
        ok = verify_password(password[:PASSWORD_MAX], stored or _DUMMY_HASH) and bool(stored)
        if not ok:
            return Attempt(None, "failure", reason="password")
        if found.get("disabled") or found.get("role") not in ROLES:
            return Attempt(None, "failure", reason="disabled")
        self._uncount(keys=keys)
        return Attempt(self._new_session(name, found["role"], found.get("scope") or None, ip),
                       "success")

    def login(self, name: str, password: str, ip: str) -> Session | None:
        """A new session for the right password; None when wrong, unknown, disabled or
        throttled."""
        return self.attempt(name, password, ip).session

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
        key = self.session_key(token)
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
        key = self.session_key(token)
        pipe = self.r.pipeline()
        pipe.hgetall(key)
        pipe.expire(key, self.settings.session_ttl_s, xx=True)
        found, _ = pipe.execute()
        if not found or found.get("role") not in ROLES:
            return None
        return Session(token, found["user"], found["role"], found.get("scope") or None)

    def slide(self, tokens: list[str]) -> list[bool]:
        """Slide the TTL of each token's session (the relay, for its open sockets); True for
        each that is still alive. One round trip for all."""
        pipe = self.r.pipeline(transaction=False)
        for token in tokens:
            pipe.expire(self.session_key(token), self.settings.session_ttl_s, xx=True)
        return [bool(ok) for ok in pipe.execute()]

    def logout(self, token: str) -> None:
        if isinstance(token, str) and token:
            self.r.delete(self.session_key(token))

    def _session_keys(self) -> Iterator[str]:
        # on a cluster every session lies on the prefix's node: scan that one
        return home_node(self.r, self.prefix).scan_iter(match=f"{self.prefix}session:*",
                                                        count=500)

    def revoke_sessions(self, name: str) -> int:
        """End every session of `name` (after a password or role change); returns how many.

        A scan over sessions: rare (an admin changed a user) and there are few sessions.
        """
        gone = 0
        for key in self._session_keys():
            if self.r.hget(key, "user") == name:
                gone += int(self.r.delete(key))
        return gone

    def drop_plain_sessions(self) -> int:
        """Delete sessions stored under their plain token (before tokens were hashed): they
        can no longer be used and should not sit in Redis; returns how many."""
        gone = 0
        for key in self._session_keys():
            if not HEX64_RE.match(key[len(self.prefix) + len("session:"):]):
                gone += int(self.r.delete(key))
        return gone


def _now_ms() -> int:
    return int(time.time() * 1000)
