"""Sources: health, enable/disable, add, fetch now (API and page)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from ctistudio.web import source_views as views
from ctistudio.web.deps import PROTECTED, CtxDep

api = APIRouter(prefix="/api/sources", tags=["sources"], dependencies=PROTECTED)
pages = APIRouter(tags=["pages"], dependencies=PROTECTED, include_in_schema=False, default_response_class=HTMLResponse)

SourceId = Annotated[str, Path(min_length=1, max_length=100)]


@api.get("", response_model=list[views.SourceView])
async def list_sources(ctx: CtxDep):
    """Every source with its health: last check, last success, consecutive failures, response time."""
    return views.list_sources(ctx)


@api.post("", response_model=views.SourceView, status_code=201)
async def add_source(ctx: CtxDep, body: views.SourceCreate):
    """Add a source (refused when the id exists)."""
    return views.add_source(ctx, body)


@api.patch("/{source_id}", response_model=views.SourceView)
async def update_source(ctx: CtxDep, source_id: SourceId, body: views.SourceUpdate):
    """Enable or disable a source."""
    return views.set_active(ctx, source_id, body.active)


@api.post("/{source_id}/fetch")
async def fetch_source(ctx: CtxDep, source_id: SourceId) -> dict[str, Any]:
    """Check the source now, whatever its schedule; returns the check's outcome."""
    return await views.fetch_now(ctx, source_id)


def _table(request: Request, ctx: CtxDep, message: str | None = None, error: str | None = None) -> Response:
    return request.app.state.templates.TemplateResponse(
        request,
        "_sources_table.html",
        {"sources": views.list_sources(ctx), "message": message, "error": error},
    )


@pages.get("/sources")
async def sources_page(request: Request, ctx: CtxDep) -> Response:
    return request.app.state.templates.TemplateResponse(
        request, "sources.html", {"sources": views.list_sources(ctx), "message": None, "error": None}
    )


@pages.post("/sources")
async def add_source_form(request: Request, ctx: CtxDep, form: Annotated[views.SourceCreate, Form()]) -> Response:
    source = views.add_source(ctx, form)
    return _table(request, ctx, message=f"Added {source.name}.")


@pages.post("/sources/{source_id}/toggle")
async def toggle_source(request: Request, ctx: CtxDep, source_id: SourceId) -> Response:
    current = next((s for s in views.list_sources(ctx) if s.id == source_id), None)
    if current is None:
        return _table(request, ctx, error=f"no source {source_id!r}")
    source = views.set_active(ctx, source_id, not current.active)
    return _table(request, ctx, message=f"{source.name} {'enabled' if source.active else 'disabled'}.")


@pages.post("/sources/{source_id}/fetch")
async def fetch_source_form(request: Request, ctx: CtxDep, source_id: SourceId) -> Response:
    outcome = await views.fetch_now(ctx, source_id)
    summary = ", ".join(f"{k}: {v}" for k, v in outcome.items() if isinstance(v, int | str) and v not in ("", 0))
    return _table(request, ctx, message=f"Fetched {source_id}: {summary or 'done'}.")
