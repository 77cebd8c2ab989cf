"""Authentication and CSRF for the web app, with the standard library only.

- Password hashes (``CTISTUDIO_PASSWORD_HASH``): ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`` as written by
  ``ctistudio hash-password``; ``pbkdf2_sha256$<iterations>$<salt>$<hash b64>`` is accepted too.
- API token (``CTISTUDIO_API_TOKEN``): sent as ``Authorization: Bearer <token>`` or ``X-API-Token``.
- Session cookie: a JSON payload signed with HMAC-SHA256 under ``CTISTUDIO_SECRET_KEY`` (a random key per
  process when unset: sessions then end with the process). It carries the CSRF token of that browser.
- CSRF: every unsafe request authenticated by the cookie must echo the session's CSRF token in the
  ``X-CSRF-Token`` header (HTMX and the page scripts do) or a ``csrf_token`` form field; an ``Origin``
  header must be this server's own origin or name a host of ``CTISTUDIO_ALLOWED_HOSTS``.
- Host allow-list (:class:`HostPolicy`): a request whose ``Host`` header is not a name this server answers
  to is refused with 400 before anything else — the defence against DNS rebinding, where a page on
  ``evil.example`` re-resolves its own name to 127.0.0.1 and reads the app as if it were same-origin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ctistudio.config import Settings
from ctistudio.errors import ConfigurationError

log = logging.getLogger(__name__)

SESSION_COOKIE = "ctistudio_session"
SESSION_MAX_AGE = 12 * 3600
CSRF_HEADER = "x-csrf-token"
TOKEN_HEADER = "x-api-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` in the ``CTISTUDIO_PASSWORD_HASH`` format."""
    if len(password) < 8:
        raise ConfigurationError("the password is too short", fix="Use at least 8 characters.")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${_b64(salt)}${_b64(digest)}"


def check_password_hash(stored: str) -> None:
    """Refuse a ``CTISTUDIO_PASSWORD_HASH`` this module cannot verify (at start-up, not at first login)."""
    parts = stored.split("$")
    if (parts[0] == "scrypt" and len(parts) == 6) or (parts[0] == "pbkdf2_sha256" and len(parts) == 4):
        return
    raise ConfigurationError(
        "CTISTUDIO_PASSWORD_HASH is not a hash ctistudio understands",
        fix="Create one with `ctistudio hash-password` and put its output in CTISTUDIO_PASSWORD_HASH.",
    )


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time comparison)."""
    parts = stored.split("$")
    try:
        if parts[0] == "scrypt" and len(parts) == 6:
            n, r, p = (int(x) for x in parts[1:4])
            expected = _unb64(parts[5])
            digest = hashlib.scrypt(
                password.encode(), salt=_unb64(parts[4]), n=n, r=r, p=p, dklen=len(expected), maxmem=2**27
            )
            return hmac.compare_digest(digest, expected)
        if parts[0] == "pbkdf2_sha256" and len(parts) == 4:
            expected = base64.b64decode(parts[3])
            digest = hashlib.pbkdf2_hmac("sha256", password.encode(), parts[2].encode(), int(parts[1]))
            return hmac.compare_digest(digest, expected)
    except (ValueError, TypeError):
        return False
    return False


@dataclass
class Session:
    """What the signed cookie holds: who logged in (``None`` when anonymous), the CSRF token and an id
    (``sid``) by which logging out revokes it (see :class:`SessionRegistry`)."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    user: str | None = None
    issued: float = field(default_factory=time.time)
    sid: str = field(default_factory=lambda: secrets.token_urlsafe(16))


class SessionSigner:
    """Signs and verifies session cookies (HMAC-SHA256 over the JSON payload)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def dumps(self, session: Session) -> str:
        data = {"c": session.csrf, "u": session.user, "t": int(session.issued), "i": session.sid}
        payload = _b64(json.dumps(data).encode())
        return f"{payload}.{self._sign(payload)}"

    def loads(self, cookie: str | None) -> Session | None:
        if not cookie or "." not in cookie or len(cookie) > 4096:
            return None
        payload, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            data: dict[str, Any] = json.loads(_unb64(payload))
        except ValueError:
            return None
        if time.time() - float(data.get("t", 0)) > SESSION_MAX_AGE:
            return None
        return Session(
            csrf=str(data.get("c", "")), user=data.get("u"), issued=float(data.get("t", 0)), sid=str(data.get("i", ""))
        )

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())


class SessionRegistry:
    """Sessions revoked by logging out, until their cookies would have expired anyway.

    A signed cookie stays valid until it expires; logging out therefore records the session's id here, and
    a cookie whose id is recorded no longer authenticates. The list is kept in ``path`` (0600, written
    atomically) so that it survives a restart and every server process on the machine sees it (re-read
    when the file changes); it holds at most :data:`SESSION_MAX_AGE` worth of logouts.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._revoked: dict[str, float] = {}
        self._seen: float | None = None
        self._lock = threading.Lock()

    def valid(self, session: Session) -> bool:
        """A logged-in session counts only with an id that was not revoked (older cookies have none)."""
        if not session.sid:
            return False
        with self._lock:
            self._reload()
            return session.sid not in self._revoked

    def revoke(self, session: Session) -> None:
        if not session.sid:
            return
        with self._lock:
            self._reload()
            now = time.time()
            self._revoked = {sid: until for sid, until in self._revoked.items() if until > now}
            self._revoked[session.sid] = session.issued + SESSION_MAX_AGE
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                temporary = self.path.with_suffix(".tmp")
                descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                    json.dump(self._revoked, handle)
                temporary.replace(self.path)
                self._seen = self.path.stat().st_mtime
            except OSError as exc:  # a read-only data folder: the logout still holds for this process
                log.warning("could not record the logout in %s: %s", self.path, exc)

    def _reload(self) -> None:
        try:
            changed = self.path.stat().st_mtime
        except OSError:
            return
        if changed == self._seen:
            return
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", self.path, exc)
            return
        self._revoked.update({str(k): float(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {})
        self._seen = changed


@dataclass(frozen=True)
class AuthConfig:
    """How this server authenticates, derived from settings."""

    password_hash: str | None
    api_token: str | None

    @property
    def enabled(self) -> bool:
        return bool(self.password_hash or self.api_token)

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthConfig:
        password_hash = settings.secret("password_hash") or None
        if password_hash:
            check_password_hash(password_hash)
        return cls(password_hash=password_hash, api_token=settings.secret("api_token") or None)

    def token_ok(self, token: str | None) -> bool:
        return bool(self.api_token and token and hmac.compare_digest(token.encode(), self.api_token.encode()))

    def login_ok(self, secret: str) -> bool:
        """A login form accepts the password (when a hash is set) or the API token."""
        if self.password_hash and verify_password(secret, self.password_hash):
            return True
        return self.token_ok(secret)


FREE_FAILURES = 5  # wrong passwords/tokens per client address before the backoff starts
MAX_BLOCK_SECONDS = 300.0
FORGET_AFTER = 900.0  # seconds without a failure after which a client's count starts again
MAX_CLIENTS = 10_000  # addresses remembered at most (the oldest are forgotten first)


class TooManyAttempts(Exception):
    """A client address failed to authenticate too often: answered 429 with ``Retry-After``."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many failed login or token attempts; retry in {retry_after:.0f} s")
        self.retry_after = max(1, int(retry_after + 0.999))


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    blocked_until: float = 0.0


class LoginThrottle:
    """Failed logins and wrong tokens per client address, with exponential backoff.

    The first :data:`FREE_FAILURES` failures cost only the login page's fixed delay; each further one
    blocks the address for 2, 4, 8 … seconds (at most :data:`MAX_BLOCK_SECONDS`); while it is blocked every
    attempt is refused with 429 before any password or token is checked. A success clears the address.
    """

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._clients: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        """Raise :class:`TooManyAttempts` while ``client`` is blocked."""
        with self._lock:
            entry = self._clients.get(client)
            wait = entry.blocked_until - self._clock() if entry else 0.0
        if wait > 0:
            raise TooManyAttempts(wait)

    def failed(self, client: str) -> None:
        now = self._clock()
        with self._lock:
            entry = self._clients.pop(client, None) or _Failures()
            if now - entry.last > FORGET_AFTER:
                entry = _Failures()
            entry.count += 1
            entry.last = now
            if entry.count > FREE_FAILURES:
                entry.blocked_until = now + min(MAX_BLOCK_SECONDS, 2.0 ** (entry.count - FREE_FAILURES))
            self._clients[client] = entry  # re-inserted: the dict's order is least recently failed first
            while len(self._clients) > MAX_CLIENTS:
                self._clients.pop(next(iter(self._clients)))

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)


def signing_key(settings: Settings) -> bytes:
    """The session signing key: ``CTISTUDIO_SECRET_KEY``, or a random one for this process."""
    configured = settings.secret("secret_key")
    if configured:
        return hashlib.sha256(configured.encode()).digest()
    return secrets.token_bytes(32)


LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = ("", "0.0.0.0", "::", "*")


def host_name(header: str | None) -> str | None:
    """The host of a ``Host`` header value (``name``, ``name:port``, ``[v6]:port``), lower-cased, without a
    trailing dot; ``None`` when it is missing or malformed."""
    value = (header or "").strip().lower()
    if value.startswith("["):
        end = value.find("]")
        rest = value[end + 1 :] if end > 0 else "x"
        if end < 0 or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        name = value[1:end]
    else:
        name, _, port = value.partition(":")
        if port and not port.isdigit():
            return None
    name = name.rstrip(".")
    if not name or any(not (ch.isalnum() or ch in ".-_:") for ch in name):
        return None
    return name


def split_hosts(text: str) -> list[str]:
    """``CTISTUDIO_ALLOWED_HOSTS`` → names: commas or spaces between them, brackets and trailing dots off."""
    out = []
    for item in text.replace(",", " ").split():
        item = item.strip().lower().rstrip(".")
        out.append(item[1:-1] if item.startswith("[") and item.endswith("]") else item)
    return [item for item in out if item]


def _matches(name: str, patterns: frozenset[str]) -> bool:
    if name in patterns or "*" in patterns:
        return True
    return any(p.startswith("*.") and (name.endswith(p[1:]) or name == p[2:]) for p in patterns)


@dataclass(frozen=True)
class HostPolicy:
    """Which ``Host`` names this server answers to, and which ``Origin`` hosts may send it unsafe requests.

    Default: ``localhost``, ``127.0.0.1``, ``::1`` and the address it is bound to (unless a wildcard such as
    ``0.0.0.0``). ``CTISTUDIO_ALLOWED_HOSTS`` adds names (``studio.example.org``, ``*.corp.example``, or
    ``*`` for any — only behind a proxy that checks the Host itself).
    """

    names: frozenset[str]
    configured: frozenset[str]

    @classmethod
    def from_settings(cls, settings: Settings, bind_host: str | None = None) -> HostPolicy:
        configured = frozenset(split_hosts(settings.allowed_hosts))
        names = set(LOCAL_NAMES) | configured
        for bound in (settings.host, bind_host):
            if bound is not None and bound.strip("[]") not in WILDCARD_BINDS:
                names.add(bound.strip("[]").lower())
        return cls(names=frozenset(names), configured=configured)

    def host_ok(self, header: str | None) -> bool:
        name = host_name(header)
        return name is not None and _matches(name, self.names)

    def origin_ok(self, origin: str, host_header: str | None) -> bool:
        """An ``Origin`` is accepted when it is this server's own origin (same host *and* port as the
        request's ``Host``), or when its host is one of ``CTISTUDIO_ALLOWED_HOSTS`` (a proxy's public name)."""
        try:
            parts = urlsplit(origin)
            hostname = parts.hostname
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not hostname:
            return False
        if host_header and parts.netloc.lower() == host_header.strip().lower():
            return True
        return bool(self.configured) and "*" not in self.configured and _matches(hostname, self.configured)

    def refusal(self, header: str | None) -> str:
        shown = (header or "")[:200] or "(none)"
        return f"the Host header {shown!r} is not a name this server answers to"


def is_loopback_host(host: str) -> bool:
    """Whether binding to ``host`` keeps the server on this machine only."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


MIN_TOKEN_CHARS = 24


def new_api_token() -> str:
    """A random API token (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(32)


def require_auth_for_host(host: str, auth: AuthConfig) -> None:
    """Refuse to serve beyond loopback without authentication, or with an API token short enough to guess."""
    if is_loopback_host(host):
        return
    if not auth.enabled:
        raise ConfigurationError(
            f"refusing to listen on {host}: that address is reachable from other machines and no "
            "authentication is configured",
            fix="Set CTISTUDIO_PASSWORD_HASH (from `ctistudio hash-password`) or CTISTUDIO_API_TOKEN, "
            "or serve on 127.0.0.1.",
        )
    if auth.api_token is not None and len(auth.api_token) < MIN_TOKEN_CHARS:
        raise ConfigurationError(
            f"refusing to listen on {host}: CTISTUDIO_API_TOKEN has {len(auth.api_token)} characters; a server "
            f"other machines can reach needs at least {MIN_TOKEN_CHARS}",
            fix="Generate one with `ctistudio hash-password --token` and put it in CTISTUDIO_API_TOKEN.",
        )
