"""RAG fixtures: a corpus of fictional CTI articles with known answers, stored in a real database.

``store`` is parametrised over SQLite, a real PostgreSQL server from Debian's binaries (no pgvector: the
numpy index) and a real PostgreSQL 16 with pgvector from the ``pgserver`` wheel (the pgvector index). Embeddings
come from the LM Studio double (a deterministic bag-of-words embedder on a real local HTTP server) unless
a test asks for ``minilm_settings`` (the embedded all-MiniLM-L6-v2, a real model).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from ctistudio.config import Settings, load_settings
from ctistudio.llm import Gateway
from ctistudio.store import Store
from ctistudio.store.articles import NewArticle, add_article
from ctistudio.store.sources import SourceDefinition, add_source, find_source
from ctistudio.testing.postgres_server import PostgresServer, pgserver_bin

DATA = Path(__file__).parent / "data"
_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def corpus() -> dict[str, Any]:
    return yaml.safe_load((DATA / "corpus.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def rag_postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def rag_pgvector() -> Iterator[PostgresServer]:
    """PostgreSQL 16 with pgvector (bundled by the pgserver wheel) on 127.0.0.1, in a temporary folder."""
    with PostgresServer(bin_dir=pgserver_bin()) as server:
        yield server


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("pgvector", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'rag.db'}"
        return
    server: PostgresServer = request.getfixturevalue("rag_pgvector" if request.param == "pgvector" else "rag_postgres")
    name = f"rag_{next(_database_numbers)}"
    yield server.create_database(name)
    server.drop_database(name)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store(url=database_url) as opened:
        yield opened


def add_corpus(store: Store, corpus: dict[str, Any]) -> dict[str, int]:
    """Store every article of the corpus; returns ``{key: article id}``."""
    ids = {}
    with store.session() as session:
        for number, item in enumerate(corpus["articles"]):
            if find_source(session, item["source"]) is None:
                add_source(session, SourceDefinition(id=item["source"], name=item["source"], url=item["url"]))
            published = item["published"]
            if isinstance(published, date):
                published = datetime(published.year, published.month, published.day, tzinfo=UTC)
            digest = hashlib.sha256(item["content"].encode()).hexdigest()
            article = add_article(
                session,
                NewArticle(
                    title=item["title"],
                    content=item["content"],
                    content_hash=digest,
                    simhash=int(digest[:16], 16) ^ number,
                    url=item["url"],
                    canonical_url=item["url"],
                    source_id=item["source"],
                    published_at=published,
                    hunt_score=item["hunt_score"],
                    platforms=item["platforms"],
                ),
            )
            ids[item["key"]] = article.id
    return ids


@pytest.fixture
def double_settings(lmstudio_double, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose chat and embeddings go to the LM Studio double."""
    monkeypatch.setenv("CTISTUDIO_EMBEDDING_PROVIDER", "lmstudio")
    monkeypatch.setenv("LLM_PROVIDER", "lmstudio")
    monkeypatch.setenv("CTISTUDIO_EMBEDDED", "false")
    return load_settings(env_file=None)


@pytest.fixture
async def double_gateway(double_settings: Settings) -> Any:
    async with Gateway(double_settings) as gateway:
        yield gateway
