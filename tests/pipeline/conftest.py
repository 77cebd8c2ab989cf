"""Fixtures of the pipeline tests: a migrated SQLite store with the demo article, and the scripted analyst."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctistudio.config import load_settings
from ctistudio.resources import demo_article
from ctistudio.sigma.similarity import SimilarityIndex, default_index_path
from ctistudio.store import Store
from ctistudio.store.articles import NewArticle, add_article

DEMO_URL = "https://example.org/ctistudio/demo/operation-paper-lantern"
DEMO_TITLE = "Operation Paper Lantern"


def add_text_article(store: Store, content: str, *, title: str, url: str | None = None, hunt_score: int = 0) -> int:
    digest = hashlib.sha256(content.encode()).hexdigest()
    with store.session() as session:
        article = add_article(
            session,
            NewArticle(
                title=title,
                content=content,
                content_hash=digest,
                simhash=int(digest[:16], 16),
                origin="text",
                url=url,
                canonical_url=url,
                platforms=["windows"],
                platform_evidence={"windows": ["rundll32.exe"]},
                hunt_score=hunt_score,
            ),
        )
        return article.id


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(url=f"sqlite:///{tmp_path / 'data' / 'ctistudio.db'}") as opened:
        yield opened


@pytest.fixture
def add_text(store: Store):
    """``add_text(content, title=…, url=…)`` → the id of a new article in this test's store."""
    return lambda content, **kwargs: add_text_article(store, content, **kwargs)


@pytest.fixture
def demo_article_id(store: Store) -> int:
    return add_text_article(store, demo_article(), title=DEMO_TITLE, url=DEMO_URL)


@pytest.fixture(scope="session")
def sigmahq_index_file(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The similarity index of the real SigmaHQ snapshot (built once per session, ~5 s)."""
    index = SimilarityIndex.build(shared / "sigmahq" / "rules")
    return index.save(tmp_path_factory.mktemp("sigmahq") / "similarity-index.json")


@pytest.fixture
def sigmahq_index(sigmahq_index_file: Path) -> Path:
    """The index installed where this test's settings look for it (``<data>/sigma/``)."""
    target = default_index_path(load_settings())
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sigmahq_index_file, target)
    return target
