"""``Annotated`` dependencies the routes declare: context, settings, gateway, session, auth and CSRF."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from ctistudio.config import Settings
from ctistudio.llm import Gateway
from ctistudio.web.context import AppContext
from ctistudio.web.errors import CsrfRefused, NotAuthenticated
from ctistudio.web.security import CSRF_HEADER, SAFE_METHODS, TOKEN_HEADER, Session


def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx


CtxDep = Annotated[AppContext, Depends(get_ctx)]


def get_settings(ctx: CtxDep) -> Settings:
    return ctx.settings()


def get_gateway(ctx: CtxDep) -> Gateway:
    return ctx.gateway()


def get_session(request: Request) -> Session:
    return request.state.session


SettingsDep = Annotated[Settings, Depends(get_settings)]
GatewayDep = Annotated[Gateway, Depends(get_gateway)]
SessionDep = Annotated[Session, Depends(get_session)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get(TOKEN_HEADER)


def client_address(request: Request) -> str:
    """The caller's address (behind ``CTISTUDIO_TRUSTED_PROXIES``: the one the proxy forwarded)."""
    return request.client.host if request.client else "unknown"


def require_user(request: Request, ctx: CtxDep, session: SessionDep) -> str | None:
    """Who is calling: ``None`` when authentication is off, else the session user or ``"token"``.

    A wrong token counts as a failed attempt of the caller's address (429 once it is over the limit)."""
    request.state.via_token = False
    if not ctx.auth.enabled:
        return None
    token = bearer_token(request)
    if token is not None:
        client = client_address(request)
        ctx.throttle.check(client)
        if ctx.auth.token_ok(token):
            ctx.throttle.succeeded(client)
            request.state.via_token = True
            return "token"
        ctx.throttle.failed(client)
    if session.user and ctx.sessions.valid(session):
        return session.user
    raise NotAuthenticated


async def require_csrf(request: Request, ctx: CtxDep, session: SessionDep) -> None:
    """Refuse cross-site and token-less unsafe requests (see :mod:`ctistudio.web.security`)."""
    if request.method in SAFE_METHODS:
        return
    if ctx.auth.token_ok(bearer_token(request)):
        return  # tokens are not sent by browsers on their own: no CSRF risk
    origin = request.headers.get("origin")
    if origin and not ctx.hosts.origin_ok(origin, request.headers.get("host")):
        raise CsrfRefused(f"cross-origin request from {origin[:200]} refused")
    if not ctx.auth.enabled and not request.state.had_session_cookie and not origin:
        return  # a script or curl on this machine with authentication off: no browser session to abuse
    supplied = request.headers.get(CSRF_HEADER)
    if supplied is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        supplied = value if isinstance(value, str) else None
    if not supplied or not hmac.compare_digest(supplied.encode(), session.csrf.encode()):
        raise CsrfRefused("missing or stale CSRF token")


UserDep = Annotated[str | None, Depends(require_user)]
PROTECTED = [Depends(require_user), Depends(require_csrf)]
