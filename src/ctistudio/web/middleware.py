"""One pure-ASGI middleware for what every request needs before routing.

- Host allow-list: a ``Host`` header that is not a name the app answers to is refused with 400 before
  anything else runs (DNS rebinding; see :class:`ctistudio.web.security.HostPolicy`).
- Body limits: ``Content-Length`` above the limit is refused at once with 413; a body without a length
  is counted while it is read and refused the moment it passes the limit. Upload paths get
  ``CTISTUDIO_MAX_UPLOAD_BYTES``, everything else :data:`DEFAULT_BODY_LIMIT`.
- The session cookie: parsed into ``scope["state"]["session"]``; set on the response when new.
- Security headers on every response, including a Content-Security-Policy that allows scripts from
  this server only (a script that slipped into an article could not run even if it escaped escaping).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from html import escape
from http.cookies import SimpleCookie
from typing import Any

from starlette.exceptions import HTTPException

from ctistudio.web.context import AppContext
from ctistudio.web.security import SESSION_COOKIE, SESSION_MAX_AGE, Session

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_BODY_LIMIT = 1024 * 1024  # 1 MiB: enough for any JSON body or form the app takes, bar uploads
UPLOAD_PATHS = ("/api/articles/upload", "/articles/new/upload", "/api/articles", "/articles/new/text")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


class BodyTooLarge(HTTPException):
    """Raised while reading a body past its limit (an HTTPException, so FastAPI passes it through)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit:,} bytes")


def wants_json(path: str) -> bool:
    """API clients get JSON errors; browsers get pages."""
    return path.startswith("/api/") or path in ("/api", "/health", "/openapi.json")


class WebMiddleware:
    def __init__(self, app: ASGIApp, ctx: AppContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if not self.ctx.hosts.host_ok(headers.get("host")):
            await _bad_host(send, path, self.ctx.hosts.refusal(headers.get("host")))
            return
        limit = self.ctx.settings().max_upload_bytes if path in UPLOAD_PATHS else DEFAULT_BODY_LIMIT
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await _too_large(send, path, limit)
            return

        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is treated as no cookie
            cookie = SimpleCookie()
        raw = cookie[SESSION_COOKIE].value if SESSION_COOKIE in cookie else None
        session = self.ctx.signer.loads(raw)
        state = scope.setdefault("state", {})
        state["had_session_cookie"] = raw is not None
        state["session"] = session or Session()
        state["set_session"] = session is None and not wants_json(path)  # pages start sessions; API calls don't
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def wrapped_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                out = list(message.get("headers", []))
                out += _security_headers()
                if state.get("set_session"):
                    out.append((b"set-cookie", self._cookie(state["session"], scope).encode("latin-1")))
                message["headers"] = out
            await send(message)

        try:
            await self.app(scope, counting_receive, wrapped_send)
        except BodyTooLarge:
            if not started:
                await _too_large(send, path, limit)

    def _cookie(self, session: Session, scope: Scope) -> str:
        configured = self.ctx.settings().cookie_secure  # None: Secure when this request came over https
        secure = "; Secure" if (configured if configured is not None else scope.get("scheme") == "https") else ""
        value = self.ctx.signer.dumps(session)
        return f"{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={SESSION_MAX_AGE}{secure}"


def _security_headers() -> list[tuple[bytes, bytes]]:
    return [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", CSP.encode()),  # /docs too: its Swagger UI is served from here
    ]


async def _too_large(send: Send, path: str, limit: int) -> None:
    reason = f"the request body is larger than the limit of {limit:,} bytes"
    await _plain_error(send, path, 413, "payload_too_large", "Too large", reason)


async def _bad_host(send: Send, path: str, reason: str) -> None:
    fix = "Open the app by a name it answers to, or add this one to CTISTUDIO_ALLOWED_HOSTS."
    await _plain_error(send, path, 400, "host_not_allowed", "Host not allowed", reason, fix)


async def _plain_error(
    send: Send, path: str, status: int, code: str, title: str, reason: str, fix: str | None = None
) -> None:
    """An error answered before routing (no templates): JSON for API paths, a small page otherwise."""
    if wants_json(path):
        body = json.dumps({"error": code, "detail": reason, **({"fix": fix} if fix else {})}).encode()
        content_type = b"application/json"
    else:
        text = escape(reason + (f" {fix}" if fix else ""))
        body = f"<!doctype html><title>{title}</title><h1>{status} {title}</h1><p>{text}</p>".encode()
        content_type = b"text/html; charset=utf-8"
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + _security_headers()})
    await send({"type": "http.response.body", "body": body})
