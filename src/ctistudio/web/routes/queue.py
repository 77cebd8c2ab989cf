"""The Sigma review queue: review side by side, edit with live validation, approve/reject, export, convert."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from ctistudio.web import queue_views as views
from ctistudio.web.deps import PROTECTED, CtxDep

api = APIRouter(prefix="/api/queue", tags=["queue"], dependencies=PROTECTED)
pages = APIRouter(tags=["pages"], dependencies=PROTECTED, include_in_schema=False, default_response_class=HTMLResponse)

RuleId = Annotated[int, Path(ge=1, le=2**53)]
StateQuery = Annotated[views.QueueState, Query(description="queued (default), approved, rejected or all")]
TargetQuery = Annotated[views.Target, Query(description="splunk, elastic, esql or eql")]


@api.get("")
async def list_queue(ctx: CtxDep, state: StateQuery = "queued") -> list[dict[str, Any]]:
    """Rules waiting for review (valid, pending, not a duplicate), or those in another state."""
    return [r.model_dump(mode="json") for r in views.list_queue(ctx, state)]


@api.get("/counts")
async def queue_counts(ctx: CtxDep) -> dict[str, int]:
    """How many rules are queued, approved, rejected, invalid and duplicates."""
    return views.queue(ctx).counts()


@api.get("/export")
async def export(ctx: CtxDep, format: Annotated[str, Query(pattern="^(zip|yaml)$")] = "zip") -> Response:
    """Download the approved rules: a zip of YAML files, or one multi-document YAML file."""
    body, media_type, name = views.export_approved(ctx, format)  # type: ignore[arg-type]
    return Response(body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@api.post("/validate")
async def validate(body: views.RuleText) -> dict[str, Any]:
    """Validate Sigma YAML without saving it (the editor's live validation)."""
    result = await views.validate_off_loop(body.yaml)
    return result.model_dump(mode="json", exclude={"rule", "normalized_yaml"})


@api.get("/{rule_id}", response_model=views.RuleDetail)
async def show_rule(ctx: CtxDep, rule_id: RuleId):
    """A rule with its YAML, validation, similar SigmaHQ rules and the closest one's text."""
    return views.rule_detail(ctx, rule_id)


@api.put("/{rule_id}")
async def edit_rule(ctx: CtxDep, rule_id: RuleId, body: views.RuleText) -> dict[str, Any]:
    """Replace the YAML; it is validated again (and judged again for novelty when valid)."""
    return (await views.edit_rule(ctx, rule_id, body.yaml)).model_dump(mode="json")


@api.post("/{rule_id}/approve")
async def approve(ctx: CtxDep, rule_id: RuleId, body: views.ReviewRequest | None = None) -> dict[str, Any]:
    """Approve a valid rule (an invalid one is refused with the reason)."""
    return views.queue(ctx).approve(rule_id, (body or views.ReviewRequest()).note).model_dump(mode="json")


@api.post("/{rule_id}/reject")
async def reject(ctx: CtxDep, rule_id: RuleId, body: views.ReviewRequest | None = None) -> dict[str, Any]:
    return views.queue(ctx).reject(rule_id, (body or views.ReviewRequest()).note).model_dump(mode="json")


@api.get("/{rule_id}/convert")
async def convert(ctx: CtxDep, rule_id: RuleId, target: TargetQuery = "splunk") -> dict[str, Any]:
    """The rule as Splunk SPL or Elastic (Lucene, ES|QL, EQL) queries, through pySigma's backends."""
    return views.queue(ctx).convert(rule_id, target).model_dump(mode="json")


# -- pages ------------------------------------------------------------------------------------------------
def _render(request: Request, name: str, **context: Any) -> Response:
    return request.app.state.templates.TemplateResponse(request, name, context)


@pages.get("/queue")
async def queue_page(request: Request, ctx: CtxDep, state: StateQuery = "queued") -> Response:
    return _render(
        request, "queue.html", rules=views.list_queue(ctx, state), counts=views.queue(ctx).counts(), state=state
    )


@pages.get("/queue/{rule_id}")
async def rule_page(request: Request, ctx: CtxDep, rule_id: RuleId) -> Response:
    return _render(request, "rule.html", detail=views.rule_detail(ctx, rule_id))


@pages.post("/queue/validate")
async def validate_fragment(request: Request, form: Annotated[views.RuleText, Form()]) -> Response:
    return _render(request, "_validation.html", result=await views.validate_off_loop(form.yaml))


@pages.post("/queue/{rule_id}/save")
async def save_fragment(request: Request, ctx: CtxDep, rule_id: RuleId, form: Annotated[views.RuleText, Form()]):
    await views.edit_rule(ctx, rule_id, form.yaml)
    return Response(status_code=204, headers={"HX-Redirect": f"/queue/{rule_id}"})


@pages.post("/queue/{rule_id}/{action}")
async def review_fragment(
    request: Request,
    ctx: CtxDep,
    rule_id: RuleId,
    action: Annotated[str, Path(pattern="^(approve|reject)$")],
    form: Annotated[views.ReviewRequest, Form()],
) -> Response:
    queue = views.queue(ctx)
    (queue.approve if action == "approve" else queue.reject)(rule_id, form.note)
    return Response(status_code=204, headers={"HX-Redirect": f"/queue/{rule_id}"})


@pages.get("/queue/{rule_id}/convert")
async def convert_fragment(request: Request, ctx: CtxDep, rule_id: RuleId, target: TargetQuery = "splunk"):
    return _render(request, "_conversion.html", conversion=views.queue(ctx).convert(rule_id, target))
