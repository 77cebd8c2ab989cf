"""Login and logout: a password (``CTISTUDIO_PASSWORD_HASH``) or the API token opens a session."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from ctistudio.web.deps import CtxDep, client_address, require_csrf
from ctistudio.web.security import Session

router = APIRouter(tags=["auth"], include_in_schema=False)

FAILED_LOGIN_DELAY = 0.5  # seconds: slows password guessing without bothering people


class LoginForm(BaseModel):
    secret: str = Field(min_length=1, max_length=512)
    next: str = Field("/", max_length=2000)


def _safe_next(target: str) -> str:
    """Only same-site paths: ``/runs`` yes, ``//evil.example`` and ``https://…`` no."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def _login_page(request: Request, next_: str, error: str | None, status: int = 200) -> Response:
    return request.app.state.templates.TemplateResponse(
        request, "login.html", {"next": _safe_next(next_), "error": error}, status_code=status
    )


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, ctx: CtxDep, next: str = "/") -> Response:
    if not ctx.auth.enabled:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_page(request, next, None)


@router.post("/login", dependencies=[Depends(require_csrf)])
async def login(request: Request, ctx: CtxDep, form: Annotated[LoginForm, Form()]) -> Response:
    if not ctx.auth.enabled:
        return RedirectResponse(_safe_next(form.next), status_code=303)
    client = client_address(request)
    ctx.throttle.check(client)  # 429 while this address is blocked, before the password is even checked
    if not await asyncio.to_thread(ctx.auth.login_ok, form.secret):  # scrypt: ~50 ms of CPU
        ctx.throttle.failed(client)
        await asyncio.sleep(FAILED_LOGIN_DELAY)
        return _login_page(request, form.next, "Wrong password or token.", status=401)
    ctx.throttle.succeeded(client)
    request.state.session = Session(user="admin")  # a new CSRF token with the new session
    request.state.set_session = True
    return RedirectResponse(_safe_next(form.next), status_code=303)


@router.post("/logout", dependencies=[Depends(require_csrf)])
async def logout(request: Request, ctx: CtxDep) -> Response:
    """End the session: its cookie is revoked on the server too, so a copy of it no longer logs anyone in."""
    ctx.sessions.revoke(request.state.session)
    request.state.session = Session()
    request.state.set_session = True
    return RedirectResponse("/login" if ctx.auth.enabled else "/", status_code=303)
