"""Articles: list with filters, detail with evidence highlighted (API and pages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from ctistudio.errors import InvalidInput
from ctistudio.llm.providers import provider_names
from ctistudio.web import article_views as views
from ctistudio.web import chat_views
from ctistudio.web import ingest_views as ingest
from ctistudio.web.deps import PROTECTED, CtxDep
from ctistudio.web.pipeline_views import article_pipeline

api = APIRouter(prefix="/api/articles", tags=["articles"], dependencies=PROTECTED)
pages = APIRouter(tags=["pages"], dependencies=PROTECTED, include_in_schema=False, default_response_class=HTMLResponse)

ArticleId = Annotated[int, Path(ge=1, le=2**53)]


class PasteForm(BaseModel):
    text: str = Field(min_length=1, max_length=ingest.MAX_PASTE_CHARS)
    title: str = Field("", max_length=300)
    url: str = Field("", max_length=2000, pattern=r"^(https?://.*)?$")


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


# -- manual ingestion -----------------------------------------------------------------------------------
@api.post("", response_model=ingest.IngestResult, status_code=201)
async def paste_article(ctx: CtxDep, body: ingest.PastedArticle, response: Response):
    """Store pasted text (Markdown with an optional YAML front matter); refused with the reason if too short.

    201 for a new article, 200 when it was there already (``exists``/``duplicate`` name it)."""
    return await _stored(ctx, await ingest.ingest_text(ctx, body), response)


@api.post("/url", response_model=ingest.IngestResult, status_code=201)
async def article_from_url(ctx: CtxDep, body: ingest.ArticleUrl, response: Response):
    """Fetch one article page (HTML, PDF or text) and store it (private addresses are refused)."""
    return await _stored(ctx, await ingest.ingest_url(ctx, body.url), response)


@api.post("/upload", response_model=ingest.IngestResult, status_code=201)
async def upload_article(ctx: CtxDep, file: UploadFile, response: Response):
    """Store an uploaded HTML, PDF, Markdown or text file (size-checked: CTISTUDIO_MAX_UPLOAD_BYTES)."""
    data = await file.read(ctx.settings().max_upload_bytes + 1)
    return await _stored(ctx, await ingest.ingest_upload(ctx, data, file.filename), response)


async def _stored(ctx: CtxDep, outcome: ingest.IngestResult, response: Response) -> ingest.IngestResult:
    """A new article is also indexed for chat (best effort); anything not stored is a 400 with the reason."""
    if outcome.status not in ("new", "exists", "duplicate"):
        raise InvalidInput(f"not stored ({outcome.status}): {outcome.reason or 'no reason given'}")
    if outcome.status != "new":
        response.status_code = 200
    elif outcome.article_id:
        outcome.chat_index = await chat_views.index_new_article(ctx, outcome.article_id)
    return outcome


@pages.get("/articles/new")
async def new_article_page(request: Request, ctx: CtxDep) -> Response:
    ingest.ingest_service(ctx)  # says plainly when ingestion is not available
    return request.app.state.templates.TemplateResponse(request, "article_new.html", {})


async def _added(ctx: CtxDep, outcome: ingest.IngestResult) -> Response:
    if outcome.status == "new" and outcome.article_id:
        await chat_views.index_new_article(ctx, outcome.article_id)
    target = outcome.article_id or outcome.duplicate_of
    if outcome.status in ("new", "exists", "duplicate") and target:
        return Response(status_code=204, headers={"HX-Redirect": f"/articles/{target}"})
    raise InvalidInput(f"not stored ({outcome.status}): {outcome.reason or 'no reason given'}")


@pages.post("/articles/new/text")
async def paste_form(ctx: CtxDep, form: Annotated[PasteForm, Form()]) -> Response:
    pasted = ingest.PastedArticle(text=form.text, title=form.title or None, url=form.url or None)
    return await _added(ctx, await ingest.ingest_text(ctx, pasted))


@pages.post("/articles/new/url")
async def url_form(ctx: CtxDep, form: Annotated[ingest.ArticleUrl, Form()]) -> Response:
    return await _added(ctx, await ingest.ingest_url(ctx, form.url))


@pages.post("/articles/new/upload")
async def upload_form(ctx: CtxDep, file: UploadFile) -> Response:
    data = await file.read(ctx.settings().max_upload_bytes + 1)
    return await _added(ctx, await ingest.ingest_upload(ctx, data, file.filename))


@pages.get("/articles/{article_id}")
async def article_page(request: Request, ctx: CtxDep, article_id: ArticleId) -> Response:
    detail = views.article_detail(ctx, article_id)
    pipeline = article_pipeline(ctx, article_id)
    quotes = views.evidence_quotes(detail) + pipeline.evidence_quotes()
    return request.app.state.templates.TemplateResponse(
        request,
        "article.html",
        {"article": detail, "quotes": quotes, "pipeline": pipeline, "providers": ["auto", *provider_names()]},
    )
