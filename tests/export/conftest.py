"""Fixtures of the export tests: the demo article in a real SQLite store, run on the LM Studio double."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.export.demo_run import run_demo

from ctistudio.config import load_settings
from ctistudio.pipeline.review import ReviewQueue
from ctistudio.resources import demo_article
from ctistudio.store import Store
from ctistudio.store.articles import NewArticle, add_article
from ctistudio.testing.lmstudio_double import LMStudioDouble

DEMO_URL = "https://example.org/ctistudio/demo/operation-paper-lantern"


@pytest.fixture
def analyst(monkeypatch: pytest.MonkeyPatch) -> Iterator[LMStudioDouble]:
    with LMStudioDouble() as double:
        for key, value in double.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("LLM_PROVIDER", "lmstudio")
        yield double


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'data' / 'ctistudio.db'}"
    monkeypatch.setenv("CTISTUDIO_DATABASE_URL", url)
    with Store(url=url) as opened:
        yield opened


@pytest.fixture
def demo_article_id(store: Store) -> int:
    content = demo_article()
    digest = hashlib.sha256(content.encode()).hexdigest()
    with store.session() as session:
        article = add_article(
            session,
            NewArticle(
                title="Operation Paper Lantern",
                content=content,
                content_hash=digest,
                simhash=int(digest[:16], 16) >> 1,
                origin="demo",
                url=DEMO_URL,
                canonical_url=DEMO_URL,
                platforms=["windows"],
            ),
        )
        return article.id


@pytest.fixture
def demo_run(analyst: LMStudioDouble, store: Store, demo_article_id: int) -> int:
    """The id of a finished run of the demo article, with the two demo rules (not yet reviewed)."""
    return run_demo(load_settings(), store, demo_article_id)


@pytest.fixture
def approved_run(store: Store, demo_run: int) -> int:
    queue = ReviewQueue(store)
    for rule in queue.list(run_id=demo_run):
        queue.approve(rule.id, "demo")
    return demo_run
