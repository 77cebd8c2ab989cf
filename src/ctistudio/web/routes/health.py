"""``GET /health``: database, providers and queue, open to probes.

Without authentication (when login is on) it answers only ``status`` and whether the database is up: the
provider URLs, which keys are set and the queue counts are for callers who logged in or send the token.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ctistudio.web.context import NO_STORE
from ctistudio.web.deps import CtxDep, SessionDep, require_user
from ctistudio.web.errors import NotAuthenticated
from ctistudio.web.providers_service import ProviderStatus, list_providers

router = APIRouter(tags=["health"])


class Component(BaseModel):
    ok: bool
    detail: str


class HealthReport(BaseModel):
    status: str  # ok | degraded | down
    database: Component
    providers: list[ProviderStatus] | None = None  # None: not shown to an unauthenticated caller
    queue: dict[str, Any] | None = None
    detail: str | None = None


@router.get("/health", response_model=HealthReport, responses={503: {"model": HealthReport}})
async def health(request: Request, ctx: CtxDep, session: SessionDep) -> JSONResponse:
    """200 when the database answers (providers may be degraded), 503 when it does not."""
    database = _database(ctx)
    if not _may_see_details(request, ctx, session):
        status = "ok" if database.ok else "down"
        report = HealthReport(
            status=status,
            database=Component(ok=database.ok, detail=""),
            detail="log in or send the API token for providers and queue",
        )
        return JSONResponse(report.model_dump(mode="json", exclude_none=True), status_code=200 if database.ok else 503)
    providers = (await list_providers(ctx)).providers
    queue = _queue(ctx) if database.ok else {}
    enabled = [p for p in providers if p.enabled]
    if not database.ok:
        status = "down"
    elif enabled and not any(p.ok for p in enabled):
        status = "degraded"
    else:
        status = "ok"
    report = HealthReport(status=status, database=database, providers=providers, queue=queue)
    return JSONResponse(report.model_dump(mode="json"), status_code=503 if status == "down" else 200)


def _may_see_details(request: Request, ctx: CtxDep, session: Any) -> bool:
    try:
        require_user(request, ctx, session)  # a wrong token counts as a failed attempt here too
    except NotAuthenticated:
        return False
    return True


def _database(ctx: CtxDep) -> Component:
    if ctx.store is None:
        return Component(ok=False, detail=NO_STORE)
    try:
        revision = ctx.store.schema_revision()
    except Exception as exc:  # a probe reports failures, it does not raise them
        return Component(ok=False, detail=f"{type(exc).__name__}: {exc}")
    return Component(ok=True, detail=f"{ctx.store.dialect}, schema {revision}")


def _queue(ctx: CtxDep) -> dict[str, Any]:
    from ctistudio.web import views

    return views.queue_counts(ctx)
