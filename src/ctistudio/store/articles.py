"""Articles: adding them, the lookups dedup needs, listing and filtering, status and score updates."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from ctistudio.errors import NotFound
from ctistudio.store.models import ARTICLE_STATUSES, Article

_MASK64 = (1 << 64) - 1


def simhash_to_signed(value: int) -> int:
    """An unsigned 64-bit fingerprint as the signed integer a BIGINT column holds."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def simhash_to_unsigned(value: int) -> int:
    return value & _MASK64


def simhash_bands(value: int) -> tuple[int, int, int, int]:
    """The four 16-bit bands of a 64-bit fingerprint (low band first)."""
    unsigned = simhash_to_unsigned(value)
    return tuple((unsigned >> (16 * i)) & 0xFFFF for i in range(4))  # type: ignore[return-value]


def hamming_distance(a: int, b: int) -> int:
    return (simhash_to_unsigned(a) ^ simhash_to_unsigned(b)).bit_count()


@dataclass
class NewArticle:
    """Everything needed to store an article (the ingest service fills it in)."""

    title: str
    content: str
    content_hash: str
    simhash: int  # unsigned or signed 64-bit
    origin: str = "feed"
    source_id: str | None = None
    url: str | None = None
    canonical_url: str | None = None
    author: str | None = None
    published_at: datetime | None = None
    content_format: str = "text"
    hunt_score: int = 0
    hunt_evidence: list[Any] = field(default_factory=list)
    platforms: list[str] = field(default_factory=list)
    platform_evidence: dict[str, Any] = field(default_factory=dict)
    status: str = "new"
    duplicate_of: int | None = None
    duplicate_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def add_article(session: Session, new: NewArticle) -> Article:
    if new.status not in ARTICLE_STATUSES:
        raise ValueError(f"unknown article status {new.status!r}")
    bands = simhash_bands(new.simhash)
    article = Article(
        source_id=new.source_id,
        origin=new.origin,
        url=new.url,
        canonical_url=new.canonical_url,
        title=new.title[:1000],
        author=new.author[:500] if new.author else None,
        published_at=new.published_at,
        content=new.content,
        content_format=new.content_format,
        word_count=len(new.content.split()),
        content_hash=new.content_hash,
        simhash=simhash_to_signed(new.simhash),
        simhash_band0=bands[0],
        simhash_band1=bands[1],
        simhash_band2=bands[2],
        simhash_band3=bands[3],
        hunt_score=new.hunt_score,
        hunt_evidence=new.hunt_evidence,
        platforms=new.platforms,
        platform_evidence=new.platform_evidence,
        status=new.status,
        duplicate_of=new.duplicate_of,
        duplicate_reason=new.duplicate_reason,
        extra=new.extra,
    )
    session.add(article)
    session.flush()
    return article


def get_article(session: Session, article_id: int) -> Article:
    article = session.get(Article, article_id)
    if article is None:
        raise NotFound(f"no article with id {article_id}", fix="See `ctistudio articles list` for the ids.")
    return article


def find_article_by_canonical_url(session: Session, canonical_url: str) -> Article | None:
    return session.scalar(select(Article).where(Article.canonical_url == canonical_url))


def known_canonical_urls(session: Session, canonical_urls: list[str]) -> set[str]:
    """Which of these canonical URLs are stored already (one query per 500 URLs)."""
    known: set[str] = set()
    for start in range(0, len(canonical_urls), 500):
        batch = canonical_urls[start : start + 500]
        known.update(session.scalars(select(Article.canonical_url).where(Article.canonical_url.in_(batch))))
    return known


def find_article_by_content_hash(session: Session, content_hash: str) -> Article | None:
    """The first (original) article with exactly this content hash."""
    query = select(Article).where(Article.content_hash == content_hash).order_by(Article.id).limit(1)
    return session.scalar(query)


def find_near_duplicate(session: Session, simhash: int, *, max_distance: int = 3) -> tuple[Article, int] | None:
    """The closest stored article whose simhash is within ``max_distance`` bits, and that distance.

    Candidates come from the band indexes (at most 3 differing bits leave at least one of the four 16-bit
    bands equal), so this is an index lookup, not a scan. Duplicates resolve to their original.
    """
    if max_distance > 3:
        raise ValueError("the band index finds neighbours up to Hamming distance 3")
    bands = simhash_bands(simhash)
    query = select(Article).where(
        or_(
            Article.simhash_band0 == bands[0],
            Article.simhash_band1 == bands[1],
            Article.simhash_band2 == bands[2],
            Article.simhash_band3 == bands[3],
        )
    )
    best: tuple[Article, int] | None = None
    for candidate in session.scalars(query.order_by(Article.id)):
        distance = hamming_distance(candidate.simhash, simhash)
        if distance <= max_distance and (best is None or distance < best[1]):
            best = (candidate, distance)
    if best is not None and best[0].duplicate_of is not None:
        original = session.get(Article, best[0].duplicate_of)
        if original is not None:
            best = (original, best[1])
    return best


@dataclass
class ArticleFilter:
    """Filters for listing articles; every field is optional."""

    status: str | None = None
    source_id: str | None = None
    origin: str | None = None
    min_hunt_score: int | None = None
    platform: str | None = None
    search: str | None = None  # case-insensitive substring of title or content
    include_duplicates: bool = True
    published_after: datetime | None = None
    published_before: datetime | None = None


def _filtered(query: Select[Any], filters: ArticleFilter) -> Select[Any]:
    if filters.status:
        query = query.where(Article.status == filters.status)
    if filters.source_id:
        query = query.where(Article.source_id == filters.source_id)
    if filters.origin:
        query = query.where(Article.origin == filters.origin)
    if filters.min_hunt_score is not None:
        query = query.where(Article.hunt_score >= filters.min_hunt_score)
    if filters.platform:
        # JSON list stored as text on both engines: match the quoted element.
        query = query.where(cast(Article.platforms, String).like(f'%"{filters.platform.lower()}"%'))
    if filters.search:
        needle = f"%{filters.search.lower()}%"
        query = query.where(or_(func.lower(Article.title).like(needle), func.lower(Article.content).like(needle)))
    if not filters.include_duplicates:
        query = query.where(Article.duplicate_of.is_(None))
    if filters.published_after:
        query = query.where(Article.published_at >= filters.published_after)
    if filters.published_before:
        query = query.where(Article.published_at < filters.published_before)
    return query


def list_articles(
    session: Session,
    filters: ArticleFilter | None = None,
    *,
    limit: int = 50,
    offset: int = 0,
    order: str = "newest",
) -> list[Article]:
    """Articles matching ``filters``; ``order`` is ``newest`` (id), ``published`` or ``hunt_score``."""
    orders = {
        "newest": (Article.id.desc(),),
        "published": (Article.published_at.desc().nulls_last(), Article.id.desc()),
        "hunt_score": (Article.hunt_score.desc(), Article.id.desc()),
    }
    if order not in orders:
        raise ValueError(f"order must be one of {sorted(orders)}")
    query = _filtered(select(Article), filters or ArticleFilter()).order_by(*orders[order])
    return list(session.scalars(query.limit(limit).offset(offset)))


def count_articles(session: Session, filters: ArticleFilter | None = None) -> int:
    query = _filtered(select(func.count()).select_from(Article), filters or ArticleFilter())
    return int(session.scalar(query) or 0)


def article_counts_by_status(session: Session) -> dict[str, int]:
    query = select(Article.status, func.count()).group_by(Article.status)
    return {status: int(count) for status, count in session.execute(query)}


def duplicates_of(session: Session, article_id: int) -> list[Article]:
    return list(session.scalars(select(Article).where(Article.duplicate_of == article_id).order_by(Article.id)))


def set_article_status(session: Session, article_id: int, status: str) -> Article:
    if status not in ARTICLE_STATUSES:
        raise ValueError(f"unknown article status {status!r}; allowed: {', '.join(ARTICLE_STATUSES)}")
    article = get_article(session, article_id)
    article.status = status
    session.flush()
    return article


def set_article_scores(
    session: Session,
    article_id: int,
    *,
    hunt_score: int,
    hunt_evidence: list[Any],
    platforms: list[str],
    platform_evidence: dict[str, Any],
) -> Article:
    """Replace the deterministic scores (e.g. after the scoring rules changed: ``articles rescore``)."""
    article = get_article(session, article_id)
    article.hunt_score = hunt_score
    article.hunt_evidence = hunt_evidence
    article.platforms = platforms
    article.platform_evidence = platform_evidence
    session.flush()
    return article


def iter_article_ids(session: Session, filters: ArticleFilter | None = None) -> list[int]:
    query = _filtered(select(Article.id), filters or ArticleFilter()).order_by(Article.id)
    return list(session.scalars(query))


def article_as_dict(article: Article, *, content: bool = False) -> dict[str, Any]:
    """Stable JSON shape of an article (CLI ``--json`` and API responses); ``content`` adds the text."""
    data: dict[str, Any] = {
        "id": article.id,
        "title": article.title,
        "url": article.url,
        "canonical_url": article.canonical_url,
        "source_id": article.source_id,
        "origin": article.origin,
        "author": article.author,
        "published_at": article.published_at.isoformat() if article.published_at else None,
        "created_at": article.created_at.isoformat() if article.created_at else None,
        "status": article.status,
        "duplicate_of": article.duplicate_of,
        "duplicate_reason": article.duplicate_reason,
        "hunt_score": article.hunt_score,
        "platforms": list(article.platforms or []),
        "word_count": article.word_count,
        "content_hash": article.content_hash,
        "simhash": f"{simhash_to_unsigned(article.simhash):016x}",
    }
    if content:
        data["content_format"] = article.content_format
        data["content"] = article.content
        data["hunt_evidence"] = article.hunt_evidence
        data["platform_evidence"] = article.platform_evidence
        data["extra"] = article.extra
    return data
