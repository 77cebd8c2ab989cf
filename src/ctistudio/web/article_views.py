"""Article list and detail as typed views, read through the store's functions (no SQL here)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ctistudio.errors import NotFound
from ctistudio.web.context import AppContext

Order = Literal["newest", "published", "hunt_score"]


class ArticleQuery(BaseModel):
    """Filters of the article list (query parameters of ``GET /api/articles`` and the Articles page)."""

    model_config = ConfigDict(extra="forbid")

    search: str | None = Field(None, max_length=200, description="Words in the title or text.")
    status: str | None = Field(None, max_length=20)
    source: str | None = Field(None, max_length=100, description="Source id.")
    platform: str | None = Field(None, max_length=20, description="windows, linux, macos or cloud.")
    min_score: int | None = Field(None, ge=0, le=100, description="Minimum hunt score.")
    order: Order = "newest"
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)


class ArticleRow(BaseModel):
    id: int
    title: str
    source_id: str | None
    origin: str
    url: str | None
    published_at: datetime | None
    created_at: datetime
    hunt_score: int
    platforms: list[str]
    status: str
    word_count: int
    duplicate_of: int | None


class ArticleList(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[ArticleRow]


class ArticleDetail(ArticleRow):
    author: str | None
    canonical_url: str | None
    content: str
    hunt_evidence: list[Any]
    platform_evidence: dict[str, Any]
    duplicate_reason: str | None


def _row(article: Any) -> dict[str, Any]:
    return {name: getattr(article, name) for name in ArticleRow.model_fields}


def _filter(query: ArticleQuery) -> Any:
    from ctistudio.store.articles import ArticleFilter

    return ArticleFilter(
        status=query.status or None,
        source_id=query.source or None,
        platform=query.platform or None,
        min_hunt_score=query.min_score,
        search=(query.search or "").strip() or None,
    )


def list_articles(ctx: AppContext, query: ArticleQuery) -> ArticleList:
    from ctistudio.store import articles as repo

    store = ctx.require_store()
    filters = _filter(query)
    with store.session() as session:
        rows = repo.list_articles(session, filters, limit=query.limit, offset=query.offset, order=query.order)
        total = repo.count_articles(session, filters)
        items = [ArticleRow(**_row(a)) for a in rows]
    return ArticleList(total=total, limit=query.limit, offset=query.offset, items=items)


def article_detail(ctx: AppContext, article_id: int) -> ArticleDetail:
    from ctistudio.store import articles as repo

    store = ctx.require_store()
    with store.session() as session:
        try:
            article = repo.get_article(session, article_id)
        except (LookupError, NotFound) as exc:
            raise NotFound(f"no article {article_id}", fix="See the Articles page for the ids.") from exc
        extra = {
            name: getattr(article, name) for name in ArticleDetail.model_fields if name not in ArticleRow.model_fields
        }
        return ArticleDetail(**_row(article), **extra)


def evidence_quotes(detail: ArticleDetail) -> list[tuple[str, str]]:
    """(quote, label) pairs of the deterministic hunt-score evidence, for highlighting in the text."""
    quotes: list[tuple[str, str]] = []
    for item in detail.hunt_evidence:
        if isinstance(item, str):
            quotes.append((item, "hunt score"))
            continue
        if not isinstance(item, dict):
            continue
        label = f"hunt score: {item.get('signal') or item.get('kind') or 'evidence'}"
        texts = item.get("matches") or [item.get("match") or item.get("text") or item.get("quote")]
        quotes.extend((text, label) for text in texts if isinstance(text, str))
    return quotes
