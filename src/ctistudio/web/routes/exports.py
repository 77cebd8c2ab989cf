"""CTI exchange over HTTP: STIX 2.1, MISP, the CSV list of indicators and Navigator layers, as downloads.

``GET /api/exports/{format}?article=N | ?run=N | ?approved=true`` — the same documents as
``ctistudio export``; the article and run pages link here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ctistudio.export import ExportFormat, collect, render
from ctistudio.web.deps import PROTECTED, CtxDep

api = APIRouter(prefix="/api/exports", tags=["exports"], dependencies=PROTECTED)

Id = Annotated[int | None, Query(ge=1, le=2**53)]


@api.get(
    "/{fmt}",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}, "description": "the export as a file"}},
)
async def export(
    ctx: CtxDep,
    fmt: ExportFormat,
    article: Id = None,
    run: Id = None,
    approved: Annotated[bool, Query(description="every approved rule")] = False,
) -> Response:
    """One article's, one run's or the approved rules' findings as ``stix`` (STIX 2.1 bundle), ``misp``
    (MISP event), ``csv`` (indicators) or ``navigator`` (ATT&CK Navigator layer 4.5)."""
    store = ctx.require_store()

    def build() -> Response:
        document = render(collect(store, article_id=article, run_id=run, approved=approved), fmt)
        disposition = f'attachment; filename="{document.filename}"'
        return Response(document.text, media_type=document.media_type, headers={"Content-Disposition": disposition})

    return await run_in_threadpool(build)
