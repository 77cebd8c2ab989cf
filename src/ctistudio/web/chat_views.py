"""RAG chat for the web: questions (whole or streamed as SSE), sessions, and indexing articles for retrieval."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ctistudio.errors import CtiStudioError
from ctistudio.web.context import AppContext, ServiceMissing
from ctistudio.web.providers_service import check_provider_name

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 4000
INLINE_INDEX_CHARS = 40_000  # larger new articles are indexed after the response (~70 chunks at most inline)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    session_id: int | None = Field(None, ge=1, le=2**53)
    provider: str | None = Field(None, max_length=40, pattern=r"^[a-z_]+$", description="auto or a provider name")


class IndexResult(BaseModel):
    indexed: bool
    articles: int = 0
    chunks: int = 0
    model: str | None = None
    detail: str = ""


def _provider(request: ChatRequest) -> str | None:
    """The provider asked for, checked before anything runs (``None``: LLM_PROVIDER)."""
    if request.provider and request.provider != "auto":
        check_provider_name(request.provider)
    return request.provider or None


async def ask(ctx: AppContext, request: ChatRequest) -> dict[str, Any]:
    reply = await ctx.chat().ask(request.question, session_id=request.session_id, provider=_provider(request))
    return reply.model_dump(mode="json")


def stream(ctx: AppContext, request: ChatRequest) -> AsyncIterator[str]:
    """SSE frames: ``session``, ``sources``, ``token``…, ``done`` (or a final ``error`` with the fix)."""
    from ctistudio.rag import sse_stream

    service = ctx.chat()  # ServiceMissing here, before the stream starts, is a plain 503
    events = service.ask_stream(request.question, session_id=request.session_id, provider=_provider(request))
    return sse_stream(events)


async def index_articles(ctx: AppContext, article_ids: list[int] | None = None) -> IndexResult:
    """Chunk and embed articles for retrieval (``None``: every article not indexed yet). Never raises for a
    provider or engine failure: the article stays stored, and the result says why it is not searchable."""
    try:
        service = ctx.chat()
        from ctistudio.rag import backfill, index_after_ingest
    except (ServiceMissing, ImportError) as exc:
        return IndexResult(indexed=False, detail=f"chat search is not available: {getattr(exc, 'reason', exc)}")
    if article_ids is not None:  # just stored: best effort, duplicates and junk left out
        done = await index_after_ingest(service.retriever, article_ids)
        if done.reason is not None:
            return IndexResult(indexed=False, detail=done.warning())
        return IndexResult(
            indexed=True, articles=done.report.articles, chunks=done.report.chunks, model=done.report.model
        )
    try:
        report = await backfill(service.retriever)
    except CtiStudioError as error:
        log.warning("indexing articles %s for chat failed: %s", article_ids or "(all)", error)
        return IndexResult(indexed=False, detail=str(error))
    return IndexResult(indexed=True, articles=report.articles, chunks=report.chunks, model=report.model)


async def index_new_article(ctx: AppContext, article_id: int) -> str:
    """Index a just-stored article for chat: at once when it is small, else as a background job (a
    300,000-character paste is ~550 chunks: minutes of embedding on a small CPU, which its request must
    not wait for). Returns the ``chat_index`` the API reports: ``indexed`` or why search cannot find it yet."""
    size = _article_size(ctx, article_id)
    if size <= INLINE_INDEX_CHARS:
        indexed = await index_articles(ctx, [article_id])
        return "indexed" if indexed.indexed else indexed.detail
    ctx.background.submit(f"indexing article {article_id} for chat", lambda: index_articles(ctx, [article_id]))
    return (
        f"indexing in the background: article {article_id} has {size:,} characters; chat search finds it "
        "when that is done"
    )


def _article_size(ctx: AppContext, article_id: int) -> int:
    from ctistudio.store.articles import get_article

    with ctx.require_store().session() as session:
        return len(get_article(session, article_id).content or "")


def sessions(ctx: AppContext) -> list[dict[str, Any]]:
    return ctx.chat().sessions()


def transcript(ctx: AppContext, session_id: int) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in ctx.chat().transcript(session_id)]
