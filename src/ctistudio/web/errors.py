"""The web edge for errors: JSON for API clients, a page (or an HTMX fragment) for browsers.

Every error answers with a status and a reason a person can act on; unexpected exceptions are logged
with their traceback and shown as a generic 500 without internals.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from ctistudio.errors import ConfigurationError, Conflict, CtiStudioError, InvalidInput, NotFound
from ctistudio.llm.errors import (
    AuthenticationFailed,
    BadRequest,
    ContextOverflow,
    LLMError,
    ModelNotLoaded,
    NoProviderAvailable,
    ProviderUnavailable,
    RateLimited,
)
from ctistudio.web.context import ServiceMissing
from ctistudio.web.middleware import wants_json
from ctistudio.web.security import TooManyAttempts

log = logging.getLogger(__name__)


class NotAuthenticated(Exception):
    """No valid session and no valid token."""


class CsrfRefused(Exception):
    """An unsafe request without the session's CSRF token, or from another origin."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Most specific first: the first matching class decides the status code.
STATUS_FOR: list[tuple[type[Exception], int, str]] = [
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (InvalidInput, 400, "invalid_input"),
    (ConfigurationError, 400, "invalid_configuration"),
    (NoProviderAvailable, 503, "no_provider_available"),
    (ProviderUnavailable, 503, "provider_unavailable"),
    (RateLimited, 429, "rate_limited"),
    (ModelNotLoaded, 409, "model_not_loaded"),
    (ContextOverflow, 422, "context_overflow"),
    (AuthenticationFailed, 502, "provider_authentication_failed"),
    (BadRequest, 502, "provider_refused_request"),
    (LLMError, 502, "llm_error"),
    (CtiStudioError, 400, "error"),
]


def status_of(error: Exception) -> tuple[int, str]:
    for cls, status, code in STATUS_FOR:
        if isinstance(error, cls):
            return status, code
    return 500, "internal_error"


def render_error(request: Request, status: int, code: str, detail: str, fix: str | None = None) -> Response:
    body: dict[str, Any] = {"error": code, "detail": detail}
    if fix:
        body["fix"] = fix
    if wants_json(request.url.path):
        return JSONResponse(body, status_code=status)
    templates = request.app.state.templates
    name = "_error_fragment.html" if request.headers.get("hx-request") else "error.html"
    return templates.TemplateResponse(
        request, name, {"status": status, "code": code, "detail": detail, "fix": fix}, status_code=status
    )


def _validation_reason(exc: RequestValidationError) -> str:
    reasons = []
    for error in exc.errors()[:10]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body",))
        reasons.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(reasons) or "invalid request"


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CtiStudioError)
    async def _ours(request: Request, exc: CtiStudioError) -> Response:
        status, code = status_of(exc)
        log.info("%s %s → %d: %s", request.method, request.url.path, status, exc.message)
        return render_error(request, status, code, exc.message, exc.fix)

    @app.exception_handler(ServiceMissing)
    async def _missing(request: Request, exc: ServiceMissing) -> Response:
        if not wants_json(request.url.path) and not request.headers.get("hx-request"):
            return request.app.state.templates.TemplateResponse(  # the page explains; it did not fail
                request,
                "unavailable_page.html",
                {"title": exc.service.capitalize(), "what": f"ctistudio.{exc.service}", "reason": exc.reason},
            )
        return render_error(
            request, 503, "service_not_available", f"this needs {exc.service}, which is not ready: {exc.reason}"
        )

    @app.exception_handler(NotAuthenticated)
    async def _login(request: Request, exc: NotAuthenticated) -> Response:
        if wants_json(request.url.path):
            return render_error(
                request,
                401,
                "not_authenticated",
                "authentication required",
                "Send `Authorization: Bearer <CTISTUDIO_API_TOKEN>` or log in at /login.",
            )
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={target}", status_code=303)

    @app.exception_handler(TooManyAttempts)
    async def _throttled(request: Request, exc: TooManyAttempts) -> Response:
        log.warning("%s %s from %s: %s", request.method, request.url.path, _client(request), exc)
        response = render_error(
            request, 429, "too_many_attempts", str(exc), f"Wait {exc.retry_after} s before trying again."
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused) -> Response:
        return render_error(request, 403, "csrf_refused", exc.reason, "Reload the page and submit again.")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return render_error(request, 422, "invalid_request", _validation_reason(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(exc.status_code, "error")
        detail = str(exc.detail) if exc.detail else "error"
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"nothing at {request.url.path}"
        return render_error(request, exc.status_code, code, detail)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return render_error(
            request,
            500,
            "internal_error",
            f"unexpected {type(exc).__name__}; the server log has the details",
            "See logs/ctistudio.log; report it if it persists.",
        )
