"""ATT&CK coverage: the tactic × technique matrix of the rules, drawn from the offline ATT&CK data."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from ctistudio.export.material import ExportRule, collect_rules
from ctistudio.export.navigator import CoverageMatrix, coverage_matrix
from ctistudio.web.deps import PROTECTED, CtxDep

api = APIRouter(prefix="/api/coverage", tags=["coverage"], dependencies=PROTECTED)
pages = APIRouter(tags=["pages"], dependencies=PROTECTED, include_in_schema=False, default_response_class=HTMLResponse)

State = Annotated[str, Query(pattern="^(approved|reviewable)$", description="approved (default) or reviewable")]
Technique = Annotated[str | None, Query(pattern=r"^T\d{4}(\.\d{3})?$", description="list this technique's rules")]


def _matrix(ctx: CtxDep, state: str) -> CoverageMatrix:
    return coverage_matrix(collect_rules(ctx.require_store(), approved_only=state == "approved"))


def _rules_of(matrix: CoverageMatrix, technique: str) -> list[ExportRule]:
    """The rules tagged with ``technique`` or, for a parent technique, with one of its sub-techniques."""
    found: dict[int, ExportRule] = {}
    for tagged, rules in matrix.techniques.items():
        if tagged == technique or re.match(rf"^{re.escape(technique)}\.\d{{3}}$", tagged):
            found.update((r.id, r) for r in rules)
    return sorted(found.values(), key=lambda r: r.id)


@api.get("")
async def coverage(ctx: CtxDep, state: State = "approved") -> dict[str, Any]:
    """Per tactic (ATT&CK matrix order), every technique with the number of rules covering it."""
    matrix = await run_in_threadpool(_matrix, ctx, state)
    return matrix.model_dump(mode="json", exclude={"techniques"}) | {
        "techniques": {t: [r.id for r in rules] for t, rules in matrix.techniques.items()}
    }


@pages.get("/coverage")
async def coverage_page(request: Request, ctx: CtxDep, state: State = "approved", technique: Technique = None):
    matrix = await run_in_threadpool(_matrix, ctx, state)
    selected = _rules_of(matrix, technique) if technique else []
    return request.app.state.templates.TemplateResponse(
        request,
        "coverage.html",
        {"matrix": matrix, "state": state, "technique": technique, "selected": selected},
    )
