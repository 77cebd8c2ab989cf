"""Hybrid search over article chunks and Sigma rules: vectors and keywords fused by reciprocal rank.

    retriever = Retriever(store, gateway)
    results = await retriever.search("certutil downloading a payload", filters=SearchFilters(platform="windows"))
    results.chunks[0].title, results.chunks[0].score, results.rules[0].rule_id

Each collection is searched twice — by meaning (the query's embedding against the stored vectors, exact
inner product) and by words (FTS5 / PostgreSQL full text / in-memory FTS5 for rules) — and the two ranked
lists are fused with reciprocal rank fusion, ``score = Σ 1 / (60 + rank)``: robust to the two scores'
incomparable scales, and a chunk that both searches find rises to the top. Vector hits under
``CTISTUDIO_RAG_MIN_SIMILARITY`` do not count, so a question about something the library does not hold
finds nothing instead of the least unrelated chunk.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from ctistudio.config import Settings
from ctistudio.embeddings import ensure_same_model, model_key, validate_vectors
from ctistudio.llm import Gateway
from ctistudio.rag.rules import RuleCollection, RuleDoc, build_rule_collection, generated_documents, sigmahq_documents
from ctistudio.rag.vector_index import chunk_vector_index
from ctistudio.store import Store
from ctistudio.store.articles import ArticleFilter, iter_article_ids
from ctistudio.store.chunks import (
    UNSEARCHABLE_STATUSES,
    chunk_hits,
    count_chunks,
    sigma_rules_signature,
    stored_embedding_models,
)
from ctistudio.store.text_search import ensure_chunk_text_index, keyword_search_chunks

RRF_K = 60
CANDIDATES = 50  # per search, before fusion
INLINE_RULE_EMBEDS = 256  # new rules a search may embed on the spot (more: keywords only until backfill)
_KEYWORD_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="rag-keywords")


@dataclass
class SearchFilters:
    """Restrict chunk search to some articles; ``platform`` also restricts rules (by log source product)."""

    source_id: str | None = None
    published_after: datetime | None = None
    published_before: datetime | None = None
    platform: str | None = None
    min_hunt_score: int | None = None

    def restricts_articles(self) -> bool:
        return any(
            v is not None and v != ""
            for v in (self.source_id, self.published_after, self.published_before, self.platform, self.min_hunt_score)
        )


class ChunkResult(BaseModel):
    kind: Literal["article"] = "article"
    chunk_id: int
    article_id: int
    ordinal: int
    title: str
    url: str | None
    source_id: str | None
    published_at: datetime | None
    hunt_score: int
    platforms: list[Any]
    text: str
    score: float  # fused (RRF)
    vector_score: float | None = None  # cosine similarity
    keyword_score: float | None = None  # BM25 / ts_rank


class RuleResult(BaseModel):
    kind: Literal["rule"] = "rule"
    key: str
    source: str  # sigmahq | generated
    rule_id: str | None
    title: str
    level: str | None
    product: str | None
    path: str | None
    db_id: int | None
    text: str
    score: float
    vector_score: float | None = None
    keyword_score: float | None = None


class SearchResults(BaseModel):
    query: str
    chunks: list[ChunkResult] = Field(default_factory=list)
    rules: list[RuleResult] = Field(default_factory=list)
    embedding_model: str | None = None
    corpus_chunks: int = 0
    corpus_rules: int = 0
    timings_ms: dict[str, float] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.chunks and not self.rules


def reciprocal_rank_fusion(*rankings: list[tuple[int, float]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Fuse ranked lists of ``(id, score)`` into one: ``Σ 1/(k + rank)`` (rank from 1), best first."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (item, _) in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))


class Retriever:
    """Searches one store's chunks and the Sigma rules, embedding queries through the gateway."""

    def __init__(
        self,
        store: Store,
        gateway: Gateway,
        *,
        settings: Settings | None = None,
        rules_dir: Path | None = None,
        include_sigmahq: bool = True,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.settings = settings or gateway.settings
        self.rules_dir = rules_dir or self.settings.sigma_rules_dir
        self.include_sigmahq = include_sigmahq and self.rules_dir is not None
        self.cache_dir = self.settings.data_dir / "rag"
        self._rule_docs: list[RuleDoc] | None = None
        self._rules_signature: tuple[int, str] | None = None
        self._rules: RuleCollection | None = None
        self._rules_lock = asyncio.Lock()

    # -- embeddings --------------------------------------------------------------------------------
    async def embed(self, texts: list[str]) -> tuple[np.ndarray, str]:
        """Vectors of ``texts`` from the embedding provider, with the key of the model that made them."""
        result = await self.gateway.embed(texts)
        key = model_key(result.provider, result.model, result.dimensions)
        return validate_vectors(result.vectors, expected_dimensions=result.dimensions, model=key), key

    # -- rules ---------------------------------------------------------------------------------------
    async def rule_documents(self) -> list[RuleDoc]:
        """The searchable rules, re-read when generated rules changed (SigmaHQ files are cached by stamp)."""
        with self.store.session() as session:
            signature = sigma_rules_signature(session)
        async with self._rules_lock:
            if self._rule_docs is None or signature != self._rules_signature:
                docs = generated_documents(self.store)
                if self.include_sigmahq and self.rules_dir is not None:
                    docs += await asyncio.to_thread(sigmahq_documents, Path(self.rules_dir), self.cache_dir)
                self._rule_docs, self._rules_signature, self._rules = docs, signature, None
            return self._rule_docs

    async def rule_collection(
        self, model_key: str | None = None, progress: Any = None, *, embed_all: bool = True
    ) -> RuleCollection:
        """The rules with vectors of ``model_key`` (default: the embedding provider's model).

        ``embed_all=False`` (the search path) embeds at most ``INLINE_RULE_EMBEDS`` new rules, so a first
        question never waits minutes for a whole SigmaHQ folder; ``ctistudio rag backfill`` embeds them all.
        """
        docs = await self.rule_documents()
        if model_key is None:
            model_key = (await self.embed(["ctistudio embedding probe"]))[1]
        async with self._rules_lock:
            current = self._rules
            stale = current is None or current.model_key not in (None, model_key)
            if stale or (embed_all and current is not None and current.unembedded):
                self._rules = await build_rule_collection(
                    docs,
                    self.embed,
                    self.cache_dir,
                    model_key=model_key,
                    progress=progress,
                    max_new=None if embed_all else INLINE_RULE_EMBEDS,
                )
            assert self._rules is not None
            return self._rules

    # -- search ------------------------------------------------------------------------------------
    def _allowed_articles(self, filters: SearchFilters | None) -> list[int] | None:
        if filters is None or not filters.restricts_articles():
            return None
        wanted = ArticleFilter(
            source_id=filters.source_id or None,
            platform=filters.platform or None,
            min_hunt_score=filters.min_hunt_score,
            published_after=filters.published_after,
            published_before=filters.published_before,
            include_duplicates=False,
        )
        with self.store.session() as session:
            return iter_article_ids(session, wanted)

    async def search(
        self,
        query: str,
        *,
        filters: SearchFilters | None = None,
        limit: int | None = None,
        rule_limit: int | None = None,
        min_similarity: float | None = None,
    ) -> SearchResults:
        """The chunks and rules best matching ``query`` (see the module docstring for the ranking)."""
        started = time.perf_counter()
        limit = self.settings.rag_top_k if limit is None else limit
        rule_limit = self.settings.rag_rule_top_k if rule_limit is None else rule_limit
        floor = self.settings.rag_min_similarity if min_similarity is None else min_similarity
        timings: dict[str, float] = {}
        ensure_chunk_text_index(self.store.engine)
        with self.store.session() as session:
            corpus = count_chunks(session)
        rule_docs = await self.rule_documents() if rule_limit else []
        results = SearchResults(query=query, corpus_chunks=corpus, corpus_rules=len(rule_docs))
        if not query.strip() or (corpus == 0 and not results.corpus_rules):
            results.timings_ms = {"total": _ms(started)}
            return results
        mark = time.perf_counter()
        vectors, key = await self.embed([query])
        timings["embed"] = _ms(mark)
        results.embedding_model = key
        if corpus:
            mark = time.perf_counter()
            results.chunks = await asyncio.to_thread(self._search_chunks, query, vectors[0], key, filters, limit, floor)
            timings["chunks"] = _ms(mark)
        if rule_docs:
            mark = time.perf_counter()
            rules = await self.rule_collection(key, embed_all=False)
            if rules.unembedded:
                results.notes.append(
                    f"{rules.unembedded} Sigma rules are not embedded yet and were searched by keywords only: "
                    "run `ctistudio rag backfill` to embed them."
                )
            platform = filters.platform if filters else None
            results.rules = _search_rules(rules, query, vectors[0], key, platform, rule_limit, floor)
            timings["rules"] = _ms(mark)
        timings["total"] = _ms(started)
        results.timings_ms = timings
        return results

    def _keyword_hits(self, query: str, allowed: list[int] | None) -> list[tuple[int, float]]:
        with self.store.engine.connect() as connection:
            return keyword_search_chunks(connection, query, limit=CANDIDATES, article_ids=allowed)

    def _search_chunks(
        self, query: str, vector: np.ndarray, key: str, filters: SearchFilters | None, limit: int, floor: float
    ) -> list[ChunkResult]:
        allowed = self._allowed_articles(filters)
        index = chunk_vector_index(self.store, key)
        if not len(index):
            with self.store.session() as session:
                stored = stored_embedding_models(session)
            for other in stored:
                ensure_same_model(
                    other, key, what="the chunk index", reindex_hint="run `ctistudio rag backfill --reindex`"
                )
        allowed_array = np.asarray(allowed, dtype=np.int64) if allowed is not None else None
        # The keyword search runs in another thread during the vector search (numpy and the driver release the GIL).
        keyword_future = _KEYWORD_POOL.submit(self._keyword_hits, query, allowed)
        by_vector = index.search(vector, limit=CANDIDATES, article_ids=allowed_array, min_similarity=floor)
        by_keyword = keyword_future.result()
        fused = reciprocal_rank_fusion(by_vector, by_keyword)
        vector_scores, keyword_scores = dict(by_vector), dict(by_keyword)
        with self.store.session() as session:
            hits = chunk_hits(session, [chunk_id for chunk_id, _ in fused[: limit * 2]])
        out: list[ChunkResult] = []
        for chunk_id, score in fused:
            hit = hits.get(chunk_id)
            if hit is None or hit.status in UNSEARCHABLE_STATUSES:
                continue
            out.append(
                ChunkResult(
                    chunk_id=hit.chunk_id,
                    article_id=hit.article_id,
                    ordinal=hit.ordinal,
                    title=hit.title,
                    url=hit.url,
                    source_id=hit.source_id,
                    published_at=hit.published_at,
                    hunt_score=hit.hunt_score,
                    platforms=hit.platforms,
                    text=hit.text,
                    score=score,
                    vector_score=vector_scores.get(chunk_id),
                    keyword_score=keyword_scores.get(chunk_id),
                )
            )
            if len(out) >= limit:
                break
        return out


def _search_rules(
    rules: RuleCollection, query: str, vector: np.ndarray, key: str, platform: str | None, limit: int, floor: float
) -> list[RuleResult]:
    ensure_same_model(rules.model_key, key, what="the rule index", reindex_hint="delete data/rag/ and search again")
    allowed = rules.allowed_for_platform(platform)
    by_vector = rules.search_vectors(vector, limit=CANDIDATES, allowed=allowed, min_similarity=floor)
    by_keyword = rules.search_keywords(query, limit=CANDIDATES, allowed=allowed)
    vector_scores, keyword_scores = dict(by_vector), dict(by_keyword)
    out = []
    for position, score in reciprocal_rank_fusion(by_vector, by_keyword)[:limit]:
        doc = rules.docs[position]
        out.append(
            RuleResult(
                key=doc.key,
                source=doc.kind,
                rule_id=doc.rule_id,
                title=doc.title,
                level=doc.level,
                product=doc.product,
                path=doc.path,
                db_id=doc.db_id,
                text=doc.text,
                score=score,
                vector_score=vector_scores.get(position),
                keyword_score=keyword_scores.get(position),
            )
        )
    return out


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)
