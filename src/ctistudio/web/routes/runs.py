"""Pipeline runs: start one for an article, list, show with live step progress, resume, cancel."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ctistudio.web.deps import PROTECTED, CtxDep

api = APIRouter(prefix="/api", tags=["runs"], dependencies=PROTECTED)
pages = APIRouter(tags=["pages"], dependencies=PROTECTED, include_in_schema=False, default_response_class=HTMLResponse)

RunId = Annotated[int, Path(ge=1, le=2**53)]
ArticleId = Annotated[int, Path(ge=1, le=2**53)]
FINAL = ("succeeded", "failed", "cancelled", "gated")
HTMX_STOP_POLLING = 286
EVENT_POLL_SECONDS = 0.5  # htmx stops an `every Ns` trigger when the server answers this status


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: str | None = Field(None, max_length=40, pattern=r"^[a-z_]+$", description="auto or a provider name")
    force: bool = Field(False, description="Run extraction and Sigma even when the rank is below the threshold.")


class RunForm(BaseModel):
    provider: str = Field("", max_length=40, pattern=r"^[a-z_]*$")
    force: bool = False


class ResumeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    from_step: str | None = Field(None, max_length=20, description="Redo this step and the later ones.")
    force: bool | None = None


class RunStarted(BaseModel):
    run_id: int
    status: str


async def _cancel(ctx: CtxDep, run_id: int) -> str:
    for service in ctx.pipelines():
        # in this process, or on workers (CTISTUDIO_BROKER_URL): the worker stops at its next write
        if run_id in service.runner.active() or service.runner.remote:
            await service.runner.cancel(run_id)
    return ctx.pipeline().run_view(run_id).status


@api.post("/articles/{article_id}/runs", response_model=RunStarted, status_code=202)
async def start_run(ctx: CtxDep, article_id: ArticleId, body: RunRequest | None = None):
    """Start a pipeline run of the article (returns at once; follow it at /api/runs/{id})."""
    body = body or RunRequest()
    run_id = await ctx.pipeline().start_run(article_id, provider=body.provider, force=body.force)
    return RunStarted(run_id=run_id, status="pending")


@api.get("/runs")
async def list_runs(
    ctx: CtxDep,
    status: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    """Runs, newest first: status, current step, rank score, rule count."""
    return [r.model_dump(mode="json") for r in ctx.pipeline().list_runs(status=status, limit=limit)]


@api.get("/runs/{run_id}")
async def get_run(ctx: CtxDep, run_id: RunId) -> dict[str, Any]:
    """One run: every step with its status, output, provider/model, tokens and duration; rules and verdicts."""
    return ctx.pipeline().run_view(run_id).model_dump(mode="json")


@api.get("/runs/{run_id}/events", response_class=StreamingResponse)
async def run_events(ctx: CtxDep, run_id: RunId) -> StreamingResponse:
    """Live progress as Server-Sent Events: ``run`` (the whole run) first, ``step`` on every step change,
    ``done`` when the run ends. Read from the store, so runs executed by another process are followed too."""
    service = ctx.pipeline()
    first = service.run_view(run_id)  # 404 before the stream starts

    async def frames() -> AsyncIterator[str]:
        view, seen = first, dict[str, str]()
        yield _sse("run", view.model_dump(mode="json"))
        while True:
            for step in view.steps:
                if seen.get(step.name) != step.status:
                    seen[step.name] = step.status
                    yield _sse("step", step.model_dump(mode="json"))
            if view.status in FINAL:
                yield _sse("done", {"status": view.status, "error": view.error})
                return
            await asyncio.sleep(EVENT_POLL_SECONDS)
            view = service.run_view(run_id)

    return StreamingResponse(frames(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _sse(kind: str, data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


@api.post("/runs/{run_id}/resume", response_model=RunStarted, status_code=202)
async def resume_run(ctx: CtxDep, run_id: RunId, body: ResumeRequest | None = None):
    """Continue from the last finished step (or redo ``from_step`` and the later ones)."""
    body = body or ResumeRequest()
    await ctx.pipeline().resume_run(run_id, from_step=body.from_step, force=body.force)
    return RunStarted(run_id=run_id, status="pending")


@api.post("/runs/{run_id}/cancel", response_model=RunStarted)
async def cancel_run(ctx: CtxDep, run_id: RunId):
    """Stop a run that runs in this server (it can be resumed later)."""
    return RunStarted(run_id=run_id, status=await _cancel(ctx, run_id))


# -- pages ------------------------------------------------------------------------------------------------
def _render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    return request.app.state.templates.TemplateResponse(request, name, context, status_code=status_code)


@pages.get("/runs")
async def runs_page(request: Request, ctx: CtxDep) -> Response:
    return _render(request, "runs.html", runs=ctx.pipeline().list_runs(limit=100))


@pages.get("/runs/{run_id}")
async def run_page(request: Request, ctx: CtxDep, run_id: RunId) -> Response:
    return _render(request, "run.html", run=ctx.pipeline().run_view(run_id), final=FINAL)


@pages.get("/runs/{run_id}/live")
async def run_live(request: Request, ctx: CtxDep, run_id: RunId) -> Response:
    """The steps fragment, polled every second while the run goes on (286 stops the polling)."""
    run = ctx.pipeline().run_view(run_id)
    status = HTMX_STOP_POLLING if run.status in FINAL else 200
    return _render(request, "_run_steps.html", status_code=status, run=run, final=FINAL)


@pages.post("/articles/{article_id}/run")
async def run_article_form(
    request: Request, ctx: CtxDep, article_id: ArticleId, form: Annotated[RunForm, Form()]
) -> Response:
    run_id = await ctx.pipeline().start_run(article_id, provider=form.provider or None, force=form.force)
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": f"/runs/{run_id}"})
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@pages.post("/runs/{run_id}/resume")
async def resume_form(request: Request, ctx: CtxDep, run_id: RunId) -> Response:
    await ctx.pipeline().resume_run(run_id)
    return Response(status_code=204, headers={"HX-Redirect": f"/runs/{run_id}"})


@pages.post("/runs/{run_id}/cancel")
async def cancel_form(request: Request, ctx: CtxDep, run_id: RunId) -> Response:
    await _cancel(ctx, run_id)
    return Response(status_code=204, headers={"HX-Redirect": f"/runs/{run_id}"})
