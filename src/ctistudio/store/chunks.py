"""Chunks of articles for retrieval: writing an article's chunks, reading vectors and hits back.

The RAG service (:mod:`ctistudio.rag`) chunks and embeds; these functions only move rows. Every stored
vector carries the key of the model that made it (``chunks.embedding_model``, e.g.
``embedded/all-minilm-l6-v2-int8/384``) so vectors of different models are never compared.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, func, not_, select
from sqlalchemy.orm import Session

from ctistudio.store.models import Article, Chunk

# Articles that are not worth searching: copies of another article, and pages the junk filter refused.
UNSEARCHABLE_STATUSES = ("duplicate", "junk")


@dataclass(frozen=True)
class NewChunk:
    ordinal: int
    text: str
    token_count: int
    char_start: int
    char_end: int
    embedding: bytes
    embedding_model: str
    embedding_dims: int


@dataclass(frozen=True)
class ChunkHit:
    """A chunk with what a citation needs about its article."""

    chunk_id: int
    article_id: int
    ordinal: int
    text: str
    title: str
    url: str | None
    source_id: str | None
    published_at: datetime | None
    hunt_score: int
    platforms: list[Any]
    status: str


def replace_article_chunks(session: Session, article_id: int, chunks: list[NewChunk]) -> int:
    """Make ``chunks`` the article's only chunks (re-indexing an article replaces what was there)."""
    session.execute(delete(Chunk).where(Chunk.article_id == article_id))
    session.add_all(
        Chunk(
            article_id=article_id,
            ordinal=c.ordinal,
            text=c.text,
            token_count=c.token_count,
            char_start=c.char_start,
            char_end=c.char_end,
            embedding=c.embedding,
            embedding_model=c.embedding_model,
            embedding_dims=c.embedding_dims,
        )
        for c in chunks
    )
    session.flush()
    return len(chunks)


def delete_all_chunks(session: Session) -> int:
    """Drop every chunk (before re-indexing with another embedding model)."""
    result = session.execute(delete(Chunk))
    return int(getattr(result, "rowcount", 0) or 0)


def articles_to_index(session: Session, model_key: str, *, limit: int | None = None) -> list[int]:
    """Searchable articles without chunks made by ``model_key`` (new ones, or indexed with another model)."""
    indexed = exists().where(Chunk.article_id == Article.id, Chunk.embedding_model == model_key)
    query = (
        select(Article.id)
        .where(Article.status.not_in(UNSEARCHABLE_STATUSES), not_(indexed), func.length(Article.content) > 0)
        .order_by(Article.id)
    )
    return list(session.scalars(query.limit(limit) if limit else query))


def searchable_article_ids(session: Session, article_ids: list[int]) -> list[int]:
    """Those of ``article_ids`` worth indexing (not duplicates or junk, with text), in id order."""
    if not article_ids:
        return []
    query = select(Article.id).where(
        Article.id.in_(article_ids), Article.status.not_in(UNSEARCHABLE_STATUSES), func.length(Article.content) > 0
    )
    return list(session.scalars(query.order_by(Article.id)))


def article_texts(session: Session, article_ids: list[int]) -> list[tuple[int, str, str]]:
    """``(id, title, content)`` of these articles, in id order."""
    query = select(Article.id, Article.title, Article.content).where(Article.id.in_(article_ids)).order_by(Article.id)
    return [(row.id, row.title, row.content) for row in session.execute(query)]


def stored_embedding_models(session: Session) -> dict[str, int]:
    """``{model key: number of chunks}`` of the vectors stored now (more than one key means a mixed index)."""
    query = (
        select(Chunk.embedding_model, func.count()).where(Chunk.embedding.is_not(None)).group_by(Chunk.embedding_model)
    )
    return {str(model): int(count) for model, count in session.execute(query)}


def newest_vector_id(session: Session, model_key: str) -> int:
    """The highest chunk id with a vector of ``model_key`` (an index lookup: cheap enough for every query)."""
    return int(session.scalar(select(func.max(Chunk.id)).where(Chunk.embedding_model == model_key)) or 0)


def vector_signature(session: Session, model_key: str) -> tuple[int, int]:
    """``(count, max id)`` of the chunks with vectors of ``model_key``: cheap change detection for caches."""
    query = select(func.count(), func.max(Chunk.id)).where(Chunk.embedding_model == model_key)
    count, top = session.execute(query).one()
    return int(count or 0), int(top or 0)


def iter_chunk_vectors(
    session: Session, model_key: str, *, after_id: int = 0, batch: int = 20000
) -> Iterator[list[tuple[int, int, bytes]]]:
    """``(chunk id, article id, vector bytes)`` of ``model_key``'s chunks with id > ``after_id``, in batches."""
    last = after_id
    while True:
        query = (
            select(Chunk.id, Chunk.article_id, Chunk.embedding)
            .where(Chunk.embedding_model == model_key, Chunk.id > last)
            .order_by(Chunk.id)
            .limit(batch)
        )
        rows = [(int(r[0]), int(r[1]), bytes(r[2] or b"")) for r in session.execute(query)]
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def chunk_hits(session: Session, chunk_ids: list[int]) -> dict[int, ChunkHit]:
    """The chunks ``chunk_ids`` with their article's title, URL, source, date, hunt score and platforms."""
    if not chunk_ids:
        return {}
    query = (
        select(
            Chunk.id,
            Chunk.article_id,
            Chunk.ordinal,
            Chunk.text,
            Article.title,
            Article.url,
            Article.canonical_url,
            Article.source_id,
            Article.published_at,
            Article.hunt_score,
            Article.platforms,
            Article.status,
        )  # only what a citation needs: never the article's whole content
        .join(Article, Article.id == Chunk.article_id)
        .where(Chunk.id.in_(chunk_ids))
    )
    hits: dict[int, ChunkHit] = {}
    for row in session.execute(query):
        hits[row.id] = ChunkHit(
            chunk_id=row.id,
            article_id=row.article_id,
            ordinal=row.ordinal,
            text=row.text,
            title=row.title,
            url=row.url or row.canonical_url,
            source_id=row.source_id,
            published_at=row.published_at,
            hunt_score=row.hunt_score,
            platforms=list(row.platforms or []),
            status=row.status,
        )
    return hits


def count_chunks(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Chunk)) or 0)


def count_searchable_articles(session: Session) -> int:
    query = select(func.count()).select_from(Article).where(Article.status.not_in(UNSEARCHABLE_STATUSES))
    return int(session.scalar(query) or 0)


# -- change detection for the rule collection's cache -----------------------------------------------------
def sigma_rules_signature(session: Session) -> tuple[int, str]:
    """``(count, newest update)`` of the generated rules: when it changes, the searchable rules changed."""
    from ctistudio.store.models import SigmaRule

    count, newest = session.execute(select(func.count(), func.max(SigmaRule.updated_at))).one()
    return int(count or 0), str(newest)
