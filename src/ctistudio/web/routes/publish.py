"""Publishing approved rules to a git repository from the web: the queue page's Publish form and the API.

The work is :func:`ctistudio.publish.service.publish_approved` (git runs as the server's user, in a
temporary clone); errors come back with their fix like every other endpoint's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from ctistudio.publish.service import PublishReport, PublishRequest, publish_approved
from ctistudio.web.deps import PROTECTED, CtxDep

api = APIRouter(prefix="/api/queue", tags=["queue"], dependencies=PROTECTED)
pages = APIRouter(tags=["pages"], dependencies=PROTECTED, include_in_schema=False, default_response_class=HTMLResponse)


def _publish(ctx: CtxDep, request: PublishRequest) -> PublishReport:
    return publish_approved(ctx.require_store(), ctx.settings(), request)


@api.post("/publish")
async def publish(ctx: CtxDep, body: PublishRequest) -> dict[str, Any]:
    """Commit the approved rules into ``repo`` in SigmaHQ's layout and push; with ``pr``, open a pull
    (GitHub) or merge (GitLab) request. Rules the repository already has are skipped."""
    report = await run_in_threadpool(_publish, ctx, body)
    return report.model_dump(mode="json")


class PublishForm(BaseModel):
    """The queue page's form: empty fields mean "the default"."""

    repo: str = Field(min_length=1, max_length=2000)
    branch: str = Field("", max_length=200)
    pr: Literal["", "github", "gitlab"] = ""
    project: str = Field("", max_length=300)


@pages.post("/queue/publish")
async def publish_fragment(request: Request, ctx: CtxDep, form: Annotated[PublishForm, Form()]) -> Response:
    wanted = PublishRequest(
        repo=form.repo.strip(),
        branch=form.branch.strip() or None,
        pr=form.pr or None,
        project=form.project.strip() or None,
    )
    report = await run_in_threadpool(_publish, ctx, wanted)
    return request.app.state.templates.TemplateResponse(request, "_publish_result.html", {"report": report})
