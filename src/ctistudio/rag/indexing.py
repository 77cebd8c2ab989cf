"""Chunk and embed articles: right after ingest (``index_after_ingest``) and for existing ones (``backfill``).

``index_after_ingest`` is what the shells call once ``ctistudio ingest …``, ``ctistudio run --url/--file``
or the web app have stored new articles: best effort — when no embedding provider answers, the articles
stay stored, the result says why they are not searchable yet, and ``ctistudio rag backfill`` (or the
first search, which indexes whatever is missing) catches up.

Vectors come from the embedding provider (``Gateway.embed``: the embedded MiniLM by default, LM Studio's
embedding endpoint when ``CTISTUDIO_EMBEDDING_PROVIDER=lmstudio``). The index never mixes models: when the
chunks already stored were embedded by another model, indexing stops with the fix (``--reindex``
re-embeds everything with the current model).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from ctistudio.embeddings import ensure_same_model, vector_to_blob
from ctistudio.errors import CtiStudioError
from ctistudio.rag.chunking import chunk_text
from ctistudio.rag.search import Retriever
from ctistudio.store.chunks import (
    NewChunk,
    article_texts,
    articles_to_index,
    delete_all_chunks,
    replace_article_chunks,
    searchable_article_ids,
    stored_embedding_models,
)
from ctistudio.store.text_search import ensure_chunk_text_index

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
EMBED_BATCH = 64
ARTICLES_PER_COMMIT = 16


@dataclass
class IndexReport:
    articles: int = 0
    chunks: int = 0
    model: str | None = None
    skipped: list[int] = field(default_factory=list)  # articles with no text to index


async def index_articles(
    retriever: Retriever, article_ids: list[int], *, progress: Progress | None = None
) -> IndexReport:
    """Chunk and embed these articles, replacing their chunks. Refuses to mix embedding models."""
    store, settings = retriever.store, retriever.settings
    ensure_chunk_text_index(store.engine)
    report = IndexReport()
    if not article_ids:
        return report
    with store.session() as session:
        stored = stored_embedding_models(session)
    for start in range(0, len(article_ids), ARTICLES_PER_COMMIT):
        batch_ids = article_ids[start : start + ARTICLES_PER_COMMIT]
        with store.session() as session:
            articles = article_texts(session, batch_ids)
        planned = []
        for article_id, title, content in articles:
            pieces = chunk_text(content, max_tokens=settings.rag_chunk_tokens, overlap=settings.rag_chunk_overlap)
            if not pieces:
                report.skipped.append(article_id)
                continue
            planned.append((article_id, title, pieces))
        if not planned:
            continue
        texts = [f"{title}\n{piece.text}" for _, title, pieces in planned for piece in pieces]
        vectors, key = await _embed_all(retriever, texts)
        if report.model is None:
            for other in stored:
                ensure_same_model(other, key, what="the chunk index", reindex_hint=REINDEX_HINT)
            report.model = key
        position = 0
        with store.session() as session:
            for article_id, _, pieces in planned:
                rows = []
                for piece in pieces:
                    rows.append(
                        NewChunk(
                            ordinal=piece.ordinal,
                            text=piece.text,
                            token_count=piece.token_count,
                            char_start=piece.char_start,
                            char_end=piece.char_end,
                            embedding=vector_to_blob(vectors[position]),
                            embedding_model=key,
                            embedding_dims=len(vectors[position]),
                        )
                    )
                    position += 1
                report.chunks += replace_article_chunks(session, article_id, rows)
                report.articles += 1
        if progress:
            progress(min(start + len(batch_ids), len(article_ids)), len(article_ids))
    return report


REINDEX_HINT = "run `ctistudio rag backfill --reindex` to re-embed every article with the current model"


async def _embed_all(retriever: Retriever, texts: list[str]) -> tuple[list, str]:
    vectors: list = []
    key = ""
    for start in range(0, len(texts), EMBED_BATCH):
        part, key = await retriever.embed(texts[start : start + EMBED_BATCH])
        vectors.extend(part)
    return vectors, key


async def backfill(
    retriever: Retriever, *, reindex: bool = False, limit: int | None = None, progress: Progress | None = None
) -> IndexReport:
    """Index every searchable article that has no chunks from the current model.

    ``reindex=True`` first drops all chunks (needed after switching embedding models).
    """
    _, key = await retriever.embed(["ctistudio embedding probe"])
    with retriever.store.session() as session:
        if reindex:
            dropped = delete_all_chunks(session)
            log.info("dropped %d chunks before re-indexing with %s", dropped, key)
        else:
            for other in stored_embedding_models(session):
                ensure_same_model(other, key, what="the chunk index", reindex_hint=REINDEX_HINT)
        pending = articles_to_index(session, key, limit=limit)
    report = await index_articles(retriever, pending, progress=progress)
    report.model = report.model or key
    return report


@dataclass
class IngestIndexing:
    """What indexing articles right after ingest did: the report, or why the articles wait for a backfill."""

    report: IndexReport = field(default_factory=IndexReport)
    pending: list[int] = field(default_factory=list)  # stored, not indexed (see ``reason``)
    reason: str | None = None

    @property
    def status(self) -> str:
        """``indexed``, or the one-line warning (what the CLI prints, the web API's ``chat_index``)."""
        return "indexed" if self.reason is None else self.warning()

    def warning(self) -> str:
        one = len(self.pending) == 1
        what = f"article {self.pending[0]} is" if one else f"{len(self.pending)} articles are"
        return (
            f"{what} stored but not indexed for search yet ({self.reason}); "
            f"`ctistudio rag backfill` (or the first search) will index {'it' if one else 'them'}"
        )


async def index_after_ingest(
    retriever: Retriever, article_ids: list[int], *, progress: Progress | None = None
) -> IngestIndexing:
    """Chunk and embed articles just stored (duplicates and junk are left out). Never raises a
    :class:`~ctistudio.errors.CtiStudioError` (no embedding provider, another model's vectors stored…):
    the result carries the reason instead, and the articles stay stored."""
    with retriever.store.session() as session:
        wanted = searchable_article_ids(session, article_ids)
    if not wanted:
        return IngestIndexing()
    try:
        return IngestIndexing(report=await index_articles(retriever, wanted, progress=progress))
    except CtiStudioError as error:
        log.info("articles %s stored but not indexed: %s", wanted, error)
        return IngestIndexing(pending=wanted, reason=" ".join(error.message.split()))
