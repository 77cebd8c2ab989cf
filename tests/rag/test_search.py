"""Hybrid search on a real database (SQLite and PostgreSQL), embeddings from the LM Studio double."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from tests.rag.conftest import add_corpus

from ctistudio.embeddings import EmbeddingModelMismatch
from ctistudio.rag import Retriever, SearchFilters, backfill, index_articles
from ctistudio.rag.search import reciprocal_rank_fusion
from ctistudio.store.articles import set_article_status
from ctistudio.store.chunks import count_chunks, stored_embedding_models
from ctistudio.store.text_search import keyword_search_chunks, keyword_terms


@pytest.fixture
async def indexed(store, corpus, double_gateway):
    ids = add_corpus(store, corpus)
    retriever = Retriever(store, double_gateway)
    report = await backfill(retriever)
    assert report.articles == len(corpus["articles"])
    return retriever, ids


def test_rrf_rewards_items_found_by_both_searches():
    fused = reciprocal_rank_fusion([(1, 0.9), (2, 0.8), (3, 0.7)], [(3, 10.0), (4, 9.0)])
    assert fused[0][0] == 3
    assert [item for item, _ in fused] == [3, 1, 2, 4]
    assert fused[0][1] == pytest.approx(1 / 63 + 1 / 61)


def test_keyword_terms_drop_stop_words_and_fts_syntax():
    assert keyword_terms('What is "certutil" -urlcache OR NEAR(x)? the the') == ["certutil", "urlcache", "near"]
    assert keyword_terms("the of and") == []


async def test_backfill_chunks_and_embeds_every_article_once(indexed, store):
    retriever, ids = indexed
    with store.session() as session:
        chunks = count_chunks(session)
        models = stored_embedding_models(session)
    assert chunks >= len(ids)
    assert list(models) == ["lmstudio/text-embedding-nomic-embed-text-v1.5/64"]
    again = await backfill(retriever)
    assert again.articles == 0, "indexed articles are not indexed twice"


async def test_keyword_index_follows_inserts_and_deletes(indexed, store):
    retriever, ids = indexed
    with store.engine.connect() as connection:
        hits = keyword_search_chunks(connection, "vssadmin shadows", limit=5)
    assert hits, "FTS finds the ransomware article"
    await index_articles(retriever, [ids["vssadmin"]])  # re-index: chunks replaced with new ids
    with store.engine.connect() as connection:
        again = keyword_search_chunks(connection, "vssadmin shadows", limit=5)
    assert again and {h[0] for h in again}.isdisjoint({h[0] for h in hits}), "old chunk ids left the index"
    with store.session() as session:
        set_article_status(session, ids["vssadmin"], "duplicate")
    with store.engine.connect() as connection:
        assert keyword_search_chunks(connection, "vssadmin shadows", limit=5) == []


async def test_hybrid_search_ranks_the_right_article_first(indexed):
    retriever, ids = indexed
    results = await retriever.search("vssadmin delete shadows before encryption")
    assert results.chunks[0].article_id == ids["vssadmin"]
    top = results.chunks[0]
    assert top.vector_score is not None and top.keyword_score is not None, "found by both searches"
    assert top.title.startswith("Ransomware deletes shadow copies")
    assert top.url == "https://example.test/reports/ransomware-shadow-copies"
    assert results.embedding_model == "lmstudio/text-embedding-nomic-embed-text-v1.5/64"
    assert set(results.timings_ms) >= {"embed", "chunks", "total"}


async def test_filters_restrict_by_platform_source_date_and_hunt_score(indexed):
    retriever, ids = indexed
    query = "persistence cron scheduled task"
    linux = await retriever.search(query, filters=SearchFilters(platform="linux"))
    assert linux.chunks and {c.article_id for c in linux.chunks} <= {ids["linux_cron"], ids["dns_tunnel"]}
    by_source = await retriever.search("credentials", filters=SearchFilters(source_id="redlab"))
    assert by_source.chunks and {c.source_id for c in by_source.chunks} == {"redlab"}
    recent = await retriever.search(
        "ransomware", filters=SearchFilters(published_after=datetime(2025, 6, 1, tzinfo=UTC))
    )
    assert {c.article_id for c in recent.chunks} <= {ids["vssadmin"], ids["marketing"]}
    assert all(c.published_at >= datetime(2025, 6, 1, tzinfo=UTC) for c in recent.chunks)
    scored = await retriever.search("platform release webinar", filters=SearchFilters(min_hunt_score=50))
    assert ids["marketing"] not in {c.article_id for c in scored.chunks}
    nothing = await retriever.search("certutil", filters=SearchFilters(source_id="no-such-source"))
    assert nothing.chunks == []


async def test_empty_corpus_returns_nothing_without_embedding(store, double_gateway, lmstudio_double):
    results = await Retriever(store, double_gateway).search("anything at all")
    assert results.empty and results.corpus_chunks == 0
    assert lmstudio_double.requests_to("/v1/embeddings") == [], "no embedding call for an empty library"


async def test_no_match_returns_nothing(indexed):
    """No keyword in common and no vector above the floor: nothing, not the least unrelated chunk.

    (The double's 64-bucket hashed embedder scores unrelated texts up to ~0.35 through bucket collisions,
    so the floor is set above that here; the MiniLM quality test checks the default floor.)"""
    retriever, _ = indexed
    unfiltered = await retriever.search("zzqx wibble frobnicate", min_similarity=-1.0)
    assert unfiltered.chunks, "without a floor the nearest vectors come back"
    assert all(c.keyword_score is None for c in unfiltered.chunks)
    results = await retriever.search("zzqx wibble frobnicate", min_similarity=0.5)
    assert results.chunks == []


async def test_mixing_embedding_models_is_refused(indexed, store, lmstudio_double, monkeypatch):
    from ctistudio.config import load_settings
    from ctistudio.llm import Gateway

    lmstudio_double.add_model("text-embedding-other", 2048, type="embedding")
    monkeypatch.setenv("LMSTUDIO_EMBEDDING_MODEL", "text-embedding-other")
    async with Gateway(load_settings(env_file=None)) as other_gateway:
        other = Retriever(store, other_gateway)
        # the double answers with the requested model name, so vectors now carry another model key
        try:
            await other.search("certutil")
        except EmbeddingModelMismatch as error:
            assert "backfill --reindex" in str(error)
        else:
            pytest.fail("searching vectors of another model must be refused")
        with pytest.raises(EmbeddingModelMismatch):
            await backfill(other)
        report = await backfill(other, reindex=True)
        assert report.articles > 0
        with store.session() as session:
            assert list(stored_embedding_models(session)) == ["lmstudio/text-embedding-other/64"]
        assert (await other.search("vssadmin shadows")).chunks


async def test_vector_index_refreshes_after_new_chunks(indexed, store, corpus):
    retriever, ids = indexed
    from ctistudio.rag.vector_index import shared_index

    first = await retriever.search("certutil urlcache")
    key = first.embedding_model
    index = shared_index(store, key)
    before = len(index)
    await index_articles(retriever, [ids["certutil"]])
    after = shared_index(store, key)
    assert after is index and len(after) > before, "new chunks are appended at once"
    after.refresh(store, recount=True)
    assert len(after) == before, "replaced chunks: the recount notices the removed ones and reloads"
    assert set(after.ids.tolist()).isdisjoint(set(first_ids(first)))
    assert np.allclose(np.linalg.norm(after.matrix, axis=1), 1.0, atol=1e-3)


def first_ids(results):
    return [c.chunk_id for c in results.chunks if c.title.startswith("Loader abuses certutil")]
