"""Article repository functions on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ctistudio.errors import NotFound
from ctistudio.store import StoreError
from ctistudio.store.articles import (
    ArticleFilter,
    NewArticle,
    add_article,
    article_counts_by_status,
    count_articles,
    duplicates_of,
    find_article_by_canonical_url,
    find_article_by_content_hash,
    find_near_duplicate,
    get_article,
    hamming_distance,
    known_canonical_urls,
    list_articles,
    set_article_scores,
    set_article_status,
    simhash_bands,
    simhash_to_signed,
    simhash_to_unsigned,
)
from ctistudio.store.models import Chunk


def _new(n: int, **overrides) -> NewArticle:
    values = {
        "title": f"Article {n}",
        "content": f"content of article {n} with powershell",
        "content_hash": f"{n:064x}",
        "simhash": (0x9E3779B97F4A7C15 * (n + 1)) & ((1 << 64) - 1),
        "canonical_url": f"https://example.org/post/{n}",
        "url": f"https://example.org/post/{n}?utm_source=x",
    }
    values.update(overrides)
    return NewArticle(**values)


def test_add_and_read_back_every_kind_of_value(store):
    published = datetime(2026, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    top_bit = (1 << 63) | 0xDEADBEEF  # needs the signed conversion to fit a BIGINT
    with store.session() as session:
        article = add_article(
            session,
            _new(
                1,
                simhash=top_bit,
                published_at=published,
                author="Jane Analyst",
                hunt_score=73,
                hunt_evidence=[{"signal": "lolbin", "matches": ["certutil -urlcache -f"], "points": 12}],
                platforms=["windows", "cloud"],
                platform_evidence={"windows": [{"signal": "registry path", "matches": ["HKLM\\Software"]}]},
                extra={"feed_tags": ["ransomware"], "unicode": "Übersicht — 攻撃"},
            ),
        )
        article_id = article.id
    with store.session() as session:
        stored = get_article(session, article_id)
        assert simhash_to_unsigned(stored.simhash) == top_bit
        assert stored.simhash < 0
        assert stored.published_at == published
        assert stored.published_at.tzinfo is not None
        assert stored.hunt_evidence[0]["matches"] == ["certutil -urlcache -f"]
        assert stored.platforms == ["windows", "cloud"]
        assert stored.platform_evidence["windows"][0]["matches"] == ["HKLM\\Software"]
        assert stored.extra["unicode"] == "Übersicht — 攻撃"
        assert stored.word_count == 6
        assert stored.created_at.tzinfo == UTC


def test_missing_article_is_not_found_with_a_fix(store):
    with store.session() as session, pytest.raises(NotFound) as caught:
        get_article(session, 999)
    assert "articles list" in caught.value.fix


def test_canonical_url_is_unique(store):
    with store.session() as session:
        add_article(session, _new(1))
    with pytest.raises(StoreError), store.session() as session:
        add_article(session, _new(2, canonical_url="https://example.org/post/1"))
    with store.session() as session:
        assert count_articles(session) == 1
        assert find_article_by_canonical_url(session, "https://example.org/post/1").title == "Article 1"
        assert known_canonical_urls(session, ["https://example.org/post/1", "https://example.org/nope"]) == {
            "https://example.org/post/1"
        }


def test_pasted_articles_without_url_can_coexist(store):
    with store.session() as session:
        add_article(session, _new(1, canonical_url=None, url=None, origin="text"))
        add_article(session, _new(2, canonical_url=None, url=None, origin="text"))
        assert count_articles(session, ArticleFilter(origin="text")) == 2


def test_content_hash_lookup_returns_the_original(store):
    with store.session() as session:
        first = add_article(session, _new(1, content_hash="a" * 64))
        add_article(session, _new(2, content_hash="a" * 64, status="duplicate", duplicate_of=first.id))
        assert find_article_by_content_hash(session, "a" * 64).id == first.id
        assert find_article_by_content_hash(session, "b" * 64) is None


def test_near_duplicate_lookup_by_bands(store):
    base = 0x0123_4567_89AB_CDEF
    with store.session() as session:
        original = add_article(session, _new(1, simhash=base))
        # 3 bits flipped, one in each of three bands: still found through the fourth band
        near = base ^ (1 << 1) ^ (1 << 17) ^ (1 << 33)
        found = find_near_duplicate(session, near)
        assert found is not None and found[0].id == original.id and found[1] == 3
        # 4 bits flipped: not a near duplicate
        assert find_near_duplicate(session, near ^ (1 << 49)) is None
        # a duplicate row resolves to its original
        add_article(session, _new(2, simhash=near, status="duplicate", duplicate_of=original.id))
        found = find_near_duplicate(session, near)
        assert found is not None and found[0].id == original.id and found[1] == 0


def test_simhash_helpers():
    value = (1 << 64) - 1
    assert simhash_to_signed(value) == -1
    assert simhash_to_unsigned(-1) == value
    assert simhash_bands(0x0004_0003_0002_0001) == (1, 2, 3, 4)
    assert hamming_distance(0b1011, 0b0001) == 2
    assert hamming_distance(-1, 0) == 64


def test_list_filters_and_orders(store):
    with store.session() as session:
        a = add_article(session, _new(1, hunt_score=80, platforms=["windows"], source_id=None))
        add_article(session, _new(2, hunt_score=20, platforms=["linux", "cloud"], title="Linux cryptominer"))
        add_article(
            session,
            _new(3, hunt_score=50, platforms=["windows"], status="duplicate", duplicate_of=a.id),
        )
    with store.session() as session:
        assert [x.id for x in list_articles(session)] == [3, 2, 1]
        assert [x.id for x in list_articles(session, order="hunt_score")] == [1, 3, 2]
        assert [x.id for x in list_articles(session, ArticleFilter(platform="windows"))] == [3, 1]
        assert [x.id for x in list_articles(session, ArticleFilter(platform="cloud"))] == [2]
        assert [x.id for x in list_articles(session, ArticleFilter(min_hunt_score=50))] == [3, 1]
        assert [x.id for x in list_articles(session, ArticleFilter(include_duplicates=False))] == [2, 1]
        assert [x.id for x in list_articles(session, ArticleFilter(search="CRYPTOminer"))] == [2]
        assert [x.id for x in list_articles(session, limit=1, offset=1)] == [2]
        assert count_articles(session, ArticleFilter(status="duplicate")) == 1
        assert article_counts_by_status(session) == {"new": 2, "duplicate": 1}
        assert [x.id for x in duplicates_of(session, a.id)] == [3]


def test_status_and_scores_updates(store):
    with store.session() as session:
        article_id = add_article(session, _new(1)).id
    with store.session() as session:
        set_article_status(session, article_id, "processed")
        set_article_scores(
            session, article_id, hunt_score=42, hunt_evidence=[{"x": 1}], platforms=["macos"], platform_evidence={}
        )
        with pytest.raises(ValueError, match="allowed"):
            set_article_status(session, article_id, "bogus")
    with store.session() as session:
        stored = get_article(session, article_id)
        assert (stored.status, stored.hunt_score, stored.platforms) == ("processed", 42, ["macos"])


def test_deleting_an_article_cascades_to_chunks(store):
    with store.session() as session:
        article = add_article(session, _new(1))
        session.add(Chunk(article_id=article.id, ordinal=0, text="x", token_count=1, embedding=b"\x00" * 8))
        article_id = article.id
    with store.session() as session:
        session.delete(get_article(session, article_id))
    with store.session() as session:
        assert session.query(Chunk).count() == 0
