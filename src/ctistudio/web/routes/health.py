"""``GET /health``: database, providers and queue, open to probes (no authentication)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ctistudio.web.deps import CtxDep
from ctistudio.web.providers_service import ProviderStatus, list_providers

router = APIRouter(tags=["health"])


class Component(BaseModel):
    ok: bool
    detail: str


class HealthReport(BaseModel):
    status: str  # ok | degraded | down
    database: Component
    providers: list[ProviderStatus]
    queue: dict[str, Any]


@router.get("/health", response_model=HealthReport, responses={503: {"model": HealthReport}})
async def health(ctx: CtxDep) -> JSONResponse:
    """200 when the database answers (providers may be degraded), 503 when it does not."""
    database = _database(ctx)
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


def _database(ctx: CtxDep) -> Component:
    if ctx.store is None:
        return Component(ok=False, detail=ctx.services.missing.get("store", "no store in this build"))
    try:
        revision = ctx.store.schema_revision()
    except Exception as exc:  # a probe reports failures, it does not raise them
        return Component(ok=False, detail=f"{type(exc).__name__}: {exc}")
    return Component(ok=True, detail=f"{ctx.store.dialect}, schema {revision}")


def _queue(ctx: CtxDep) -> dict[str, Any]:
    from ctistudio.web import views

    return views.queue_counts(ctx)
