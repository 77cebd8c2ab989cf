"""Articles: list with filters, detail with evidence highlighted (API and pages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from ctistudio.web import article_views as views
from ctistudio.web.deps import PROTECTED, CtxDep
from ctistudio.web.pipeline_views import article_pipeline

api = APIRouter(prefix="/api/articles", tags=["articles"], dependencies=PROTECTED)
pages = APIRouter(tags=["pages"], dependencies=PROTECTED, include_in_schema=False, default_response_class=HTMLResponse)

ArticleId = Annotated[int, Path(ge=1, le=2**53)]
QueryDep = Annotated[views.ArticleQuery, Query()]


@api.get("", response_model=views.ArticleList)
async def list_articles(ctx: CtxDep, query: QueryDep):
    """Articles matching the filters, newest first (or by ``order``), with their hunt scores."""
    return views.list_articles(ctx, query)


@api.get("/{article_id}", response_model=views.ArticleDetail)
async def get_article(ctx: CtxDep, article_id: ArticleId):
    """One article: clean text, hunt score with evidence, platforms."""
    return views.article_detail(ctx, article_id)


@pages.get("/articles")
async def articles_page(request: Request, ctx: CtxDep, query: QueryDep) -> Response:
    listing = views.list_articles(ctx, query)
    name = "_articles_table.html" if request.headers.get("hx-request") else "articles.html"
    return request.app.state.templates.TemplateResponse(request, name, {"listing": listing, "query": query})


@pages.get("/articles/{article_id}")
async def article_page(request: Request, ctx: CtxDep, article_id: ArticleId) -> Response:
    detail = views.article_detail(ctx, article_id)
    pipeline = article_pipeline(ctx, article_id)
    quotes = views.evidence_quotes(detail) + pipeline.evidence_quotes()
    return request.app.state.templates.TemplateResponse(
        request, "article.html", {"article": detail, "quotes": quotes, "pipeline": pipeline}
    )
