"""HTML pages: thin handlers that gather view data from services and render a template."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from ctistudio.web import settings_service, views
from ctistudio.web.deps import PROTECTED, CtxDep
from ctistudio.web.providers_service import list_providers
from ctistudio.web.routes.settings import current_view

router = APIRouter(tags=["pages"], dependencies=PROTECTED, include_in_schema=False, default_response_class=HTMLResponse)


def render(request: Request, name: str, **context) -> Response:
    return request.app.state.templates.TemplateResponse(request, name, context)


@router.get("/")
async def dashboard(request: Request, ctx: CtxDep) -> Response:
    providers = await list_providers(ctx)
    return render(request, "dashboard.html", providers=providers, summary=views.dashboard(ctx))


@router.get("/settings")
async def settings_page(request: Request, ctx: CtxDep) -> Response:
    view = current_view(ctx)
    return render(
        request,
        "settings.html",
        view=view,
        groups=settings_service.grouped(view),
        labels=settings_service.LABELS,
        group_providers=settings_service.GROUP_PROVIDERS,
        lmstudio_model=ctx.settings().lmstudio_model,
    )
