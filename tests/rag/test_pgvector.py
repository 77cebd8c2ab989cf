"""pgvector on PostgreSQL: the same hits as the numpy index, filters, sync with chunks, and the fallback;
and PostgreSQL's keyword index (stored tsvectors kept in step by triggers).

Two real servers: PostgreSQL 16 with pgvector from the ``pgserver`` wheel, and Debian's PostgreSQL 15
(no pgvector) where the numpy index runs and ``rag status`` says why.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import insert, text
from typer.testing import CliRunner

from ctistudio.cli.main import app
from ctistudio.rag import Retriever, SearchFilters, backfill, index_articles
from ctistudio.rag.vector_index import PgVectorIndex, VectorIndex, chunk_vector_index, vector_backend
from ctistudio.store import Store
from ctistudio.store.articles import NewArticle, add_article
from ctistudio.store.models import Chunk
from ctistudio.store.pgvector import sync_chunk_vectors
from ctistudio.store.text_search import ensure_chunk_text_index, keyword_search_chunks
from ctistudio.testing.postgres_server import PostgresServer

from .conftest import add_corpus

pytestmark = pytest.mark.postgres
_numbers = itertools.count(1)


def _fresh_store(server: PostgresServer) -> Iterator[Store]:
    name = f"vectors_{next(_numbers)}"
    with Store(url=server.create_database(name)) as store:
        yield store
    server.drop_database(name)


@pytest.fixture
def pg_store(rag_pgvector: PostgresServer) -> Iterator[Store]:
    """A store on PostgreSQL 16 with pgvector."""
    yield from _fresh_store(rag_pgvector)


@pytest.fixture
def debian_store(rag_postgres: PostgresServer) -> Iterator[Store]:
    """A store on Debian's PostgreSQL 15, which has no pgvector."""
    yield from _fresh_store(rag_postgres)


def numpy_index(store: Store, key: str) -> VectorIndex:
    index = VectorIndex(key)
    index.refresh(store, recount=True)
    return index


def random_unit_vectors(count: int, dims: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, dims)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def store_synthetic_chunks(store: Store, vectors: np.ndarray, key: str, articles: int = 20) -> list[int]:
    """``len(vectors)`` chunks spread over ``articles`` articles; returns the article ids."""
    with store.session() as session:
        article_ids = [
            add_article(session, NewArticle(title=f"a{n}", content=f"article {n}", content_hash=f"h{n}", simhash=n)).id
            for n in range(articles)
        ]
        rows = [
            {
                "article_id": article_ids[i % articles],
                "ordinal": i // articles,
                "text": f"chunk {i}",
                "token_count": 2,
                "embedding": vector.astype("<f4").tobytes(),
                "embedding_model": key,
                "embedding_dims": len(vector),
            }
            for i, vector in enumerate(vectors)
        ]
        session.execute(insert(Chunk), rows)
    return article_ids


def test_pgvector_is_used_when_the_server_has_it(pg_store):
    backend = vector_backend(pg_store)
    assert backend.name == "pgvector" and "pgvector 0." in backend.detail
    assert isinstance(chunk_vector_index(pg_store, "any/model/8"), PgVectorIndex)
    with pg_store.engine.connect() as connection:
        assert connection.execute(text("SELECT extname FROM pg_extension WHERE extname = 'vector'")).scalar()


def test_same_top_hits_as_the_numpy_index_on_384_dim_vectors(pg_store):
    key = "synthetic/random/384"
    vectors = random_unit_vectors(3000, 384, seed=7)
    article_ids = store_synthetic_chunks(pg_store, vectors, key)
    pg, ours = chunk_vector_index(pg_store, key), numpy_index(pg_store, key)
    assert isinstance(pg, PgVectorIndex) and len(pg) == len(ours) == 3000
    allowed = np.asarray(article_ids[:3], dtype=np.int64)
    for query in random_unit_vectors(10, 384, seed=8):
        by_pg, by_numpy = pg.search(query, limit=20), ours.search(query, limit=20)
        assert [i for i, _ in by_pg] == [i for i, _ in by_numpy]
        assert np.allclose([s for _, s in by_pg], [s for _, s in by_numpy], atol=1e-5)
        filtered = pg.search(query, limit=20, article_ids=allowed)
        assert [i for i, _ in filtered] == [i for i, _ in ours.search(query, limit=20, article_ids=allowed)]
        assert len(filtered) == 20 and all(_article_of(pg_store, i) in article_ids[:3] for i, _ in filtered)
    assert pg.search(vectors[5], limit=1, min_similarity=0.99)[0][0] > 0, "a stored vector finds itself"
    assert pg.search(vectors[5], limit=5, article_ids=np.zeros(0, dtype=np.int64)) == []


def _article_of(store: Store, chunk_id: int) -> int:
    with store.session() as session:
        return session.get(Chunk, chunk_id).article_id


async def test_hybrid_search_on_pgvector_matches_the_numpy_vector_hits(pg_store, corpus, double_gateway):
    ids = add_corpus(pg_store, corpus)
    retriever = Retriever(pg_store, double_gateway)
    await backfill(retriever)
    results = await retriever.search("vssadmin delete shadows before encryption")
    assert results.chunks[0].article_id == ids["vssadmin"]
    vectors, key = await retriever.embed(["vssadmin delete shadows before encryption"])
    by_numpy = dict(numpy_index(pg_store, key).search(vectors[0], limit=50, min_similarity=0.3))
    for chunk in results.chunks:
        if chunk.vector_score is not None:
            assert chunk.vector_score == pytest.approx(by_numpy[chunk.chunk_id], abs=1e-5)
    linux = await retriever.search("persistence cron scheduled task", filters=SearchFilters(platform="linux"))
    assert linux.chunks and {c.article_id for c in linux.chunks} <= {ids["linux_cron"], ids["dns_tunnel"]}


async def test_chunk_vectors_follow_reindexing_deletes_and_missing_rows(pg_store, corpus, double_gateway):
    ids = add_corpus(pg_store, corpus)
    retriever = Retriever(pg_store, double_gateway)
    await backfill(retriever)
    first = await retriever.search("certutil urlcache")
    key = first.embedding_model
    index = chunk_vector_index(pg_store, key)
    total = len(index)
    old = {c.chunk_id for c in first.chunks if c.article_id == ids["certutil"]}
    assert old
    await index_articles(retriever, [ids["certutil"]])  # chunks replaced with new ids
    again = await retriever.search("certutil urlcache")
    new = {c.chunk_id for c in again.chunks if c.article_id == ids["certutil"]}
    assert new and new.isdisjoint(old), "replaced chunks took their vectors with them (cascade)"
    assert len(chunk_vector_index(pg_store, key)) == total
    with pg_store.engine.begin() as connection:
        connection.execute(
            text("DELETE FROM chunk_vectors WHERE chunk_id IN (SELECT min(chunk_id) FROM chunk_vectors)")
        )
        assert connection.execute(text("SELECT count(*) FROM chunk_vectors")).scalar() == total - 1
    index.refresh(pg_store, recount=True)
    assert len(index) == total, "the recount copies vectors missing below the newest id"
    assert sync_chunk_vectors(pg_store.engine, key, all_missing=True) == 0


async def test_debian_postgres_without_pgvector_falls_back_to_numpy_with_the_reason(
    debian_store, corpus, double_gateway, monkeypatch
):
    backend = vector_backend(debian_store)
    assert backend.name == "numpy"
    assert "no usable pgvector" in backend.detail and "CREATE EXTENSION vector failed" in backend.detail
    ids = add_corpus(debian_store, corpus)
    retriever = Retriever(debian_store, double_gateway)
    await backfill(retriever)
    assert isinstance(chunk_vector_index(debian_store, "lmstudio/text-embedding-nomic-embed-text-v1.5/64"), VectorIndex)
    assert (await retriever.search("vssadmin delete shadows")).chunks[0].article_id == ids["vssadmin"]

    monkeypatch.setenv("CTISTUDIO_DATABASE_URL", str(debian_store.engine.url.render_as_string(hide_password=False)))
    status = CliRunner().invoke(app, ["rag", "status", "--json"])
    assert status.exit_code == 0, status.output
    reported = json.loads(status.stdout)["vector_backend"]
    assert reported["name"] == "numpy" and "CREATE EXTENSION vector failed" in reported["detail"]


def test_rag_status_names_pgvector(pg_store, monkeypatch):
    monkeypatch.setenv("CTISTUDIO_DATABASE_URL", pg_store.engine.url.render_as_string(hide_password=False))
    status = CliRunner().invoke(app, ["rag", "status"])
    assert status.exit_code == 0, status.output
    assert "pgvector" in status.stdout and "postgresql-full-text" in status.stdout


def test_postgres_keyword_index_fills_old_chunks_and_follows_titles(debian_store):
    with debian_store.engine.begin() as connection:  # an installation from before: the expression index
        connection.execute(text("CREATE INDEX ix_chunks_text_fts ON chunks USING gin (to_tsvector('english', text))"))
    article_ids = store_synthetic_chunks(debian_store, random_unit_vectors(40, 8, seed=3), "synthetic/random/8")
    with debian_store.session() as session:  # chunk texts are "chunk N": give one article a telling title
        session.execute(
            text("UPDATE articles SET title = 'Kerberoasting report' WHERE id = :id"), {"id": article_ids[0]}
        )
    ensure_chunk_text_index(debian_store.engine)  # chunks written before the index existed are filled in
    with debian_store.engine.connect() as connection:
        found = keyword_search_chunks(connection, "kerberoasting", limit=10)
        assert {_article_of(debian_store, chunk_id) for chunk_id, _ in found} == {article_ids[0]}
        assert connection.execute(text("SELECT to_regclass('ix_chunks_text_fts')")).scalar() is None
    with debian_store.session() as session:
        session.execute(text("UPDATE articles SET title = 'Golden ticket' WHERE id = :id"), {"id": article_ids[1]})
        session.add(Chunk(article_id=article_ids[2], ordinal=99, text="AS-REP roasting without preauth", token_count=5))
    with debian_store.engine.connect() as connection:
        assert {_article_of(debian_store, c) for c, _ in keyword_search_chunks(connection, "golden ticket")} == {
            article_ids[1]
        }, "a new title is searchable at once (trigger)"
        assert len(keyword_search_chunks(connection, "preauth roasting")) == 1, "a new chunk too"
        assert keyword_search_chunks(connection, "kerberoasting", article_ids=[article_ids[1]]) == []
