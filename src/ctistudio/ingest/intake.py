"""Storing one article: dedup (canonical URL, content hash, simhash), deterministic scores, the row.

The one place where the three duplicate definitions are applied, in this order:

1. **canonical URL** (tracking parameters stripped) already stored → nothing new is stored, the outcome
   is ``exists`` with the stored article's id;
2. **content hash** (SHA-256 of the normalised words) equal to a stored article → stored with
   ``status='duplicate'``, ``duplicate_of=N``, reason ``content_hash``;
3. **simhash** within Hamming distance 3 of a stored article → stored the same way, reason
   ``simhash:<distance>``.

Duplicates are kept (never silently dropped) so the UI can show "duplicate of N" and why.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ctistudio.errors import InvalidInput
from ctistudio.ingest.canonical_url import canonical_url
from ctistudio.ingest.fingerprints import NEAR_DUPLICATE_DISTANCE, content_hash, simhash
from ctistudio.ingest.hunt_score import HuntScore, score_article
from ctistudio.ingest.platforms import PlatformDetection, detect_platforms
from ctistudio.store.articles import (
    NewArticle,
    add_article,
    find_article_by_canonical_url,
    find_article_by_content_hash,
    find_near_duplicate,
)

log = logging.getLogger(__name__)

OutcomeStatus = Literal["new", "duplicate", "exists", "skipped", "refused", "failed"]


@dataclass
class ArticleCandidate:
    """An article's text and metadata before it is stored."""

    title: str
    text: str
    origin: str  # feed | url | upload | text | demo
    url: str | None = None
    author: str | None = None
    published_at: datetime | None = None
    source_id: str | None = None
    content_format: str = "markdown"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class IngestOutcome:
    """What happened to one article (or entry); ``reason`` explains anything but ``new``."""

    status: OutcomeStatus
    url: str | None = None
    title: str | None = None
    article_id: int | None = None
    duplicate_of: int | None = None
    reason: str | None = None
    hunt_score: int | None = None
    platforms: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _canonical_or_none(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return canonical_url(url)
    except InvalidInput:
        return None


@dataclass
class PreparedArticle:
    """A candidate with its fingerprints and deterministic scores computed (CPU work, no database)."""

    candidate: ArticleCandidate
    canonical: str | None
    digest: str
    fingerprint: int
    hunt: HuntScore
    platforms: PlatformDetection


def web_url_or_none(url: str | None) -> str | None:
    """``url`` when it is an http(s) URL; anything else (``javascript:``, ``data:``, ``file:`` from a front
    matter or a feed entry) is not stored, so no page can ever render it as a link."""
    text = (url or "").strip()
    return text if text.lower().startswith(("http://", "https://")) else None


def prepare_candidate(candidate: ArticleCandidate) -> PreparedArticle:
    """Fingerprints, hunt score and platforms of ``candidate``; safe to run in a worker thread or process."""
    if candidate.url and web_url_or_none(candidate.url) is None:
        log.info("dropped the non-http(s) URL %r of %r", candidate.url[:80], candidate.title[:80])
        candidate = replace(candidate, url=None)
    return PreparedArticle(
        candidate=candidate,
        canonical=_canonical_or_none(candidate.url),
        digest=content_hash(candidate.text),
        fingerprint=simhash(candidate.text),
        hunt=score_article(candidate.text, candidate.title),
        platforms=detect_platforms(candidate.text, candidate.title),
    )


def save_candidate(session: Session, candidate: ArticleCandidate | PreparedArticle) -> IngestOutcome:
    """Dedup, score and store ``candidate`` (see the module docstring for the duplicate rules)."""
    prepared = candidate if isinstance(candidate, PreparedArticle) else prepare_candidate(candidate)
    candidate, canonical = prepared.candidate, prepared.canonical
    if canonical:
        existing = find_article_by_canonical_url(session, canonical)
        if existing is not None:
            return IngestOutcome(
                "exists", candidate.url, existing.title, existing.id, reason=f"already stored as article {existing.id}"
            )
    duplicate_of, reason = _find_duplicate(session, prepared)
    hunt, platforms = prepared.hunt, prepared.platforms
    new = NewArticle(
        title=candidate.title,
        content=candidate.text,
        content_hash=prepared.digest,
        simhash=prepared.fingerprint,
        origin=candidate.origin,
        source_id=candidate.source_id,
        url=candidate.url,
        canonical_url=canonical,
        author=candidate.author,
        published_at=candidate.published_at,
        content_format=candidate.content_format,
        hunt_score=hunt.score,
        hunt_evidence=hunt.evidence_json(),
        platforms=platforms.platforms,
        platform_evidence=platforms.evidence_json(),
        status="duplicate" if duplicate_of else "new",
        duplicate_of=duplicate_of,
        duplicate_reason=reason,
        extra=candidate.extra,
    )
    try:
        with session.begin_nested():
            article = add_article(session, new)
    except IntegrityError:  # another process stored the same canonical URL a moment ago
        existing = find_article_by_canonical_url(session, canonical) if canonical else None
        if existing is None:
            raise
        return IngestOutcome("exists", candidate.url, existing.title, existing.id, reason="stored concurrently")
    outcome = IngestOutcome(
        "duplicate" if duplicate_of else "new",
        candidate.url,
        article.title,
        article.id,
        duplicate_of=duplicate_of,
        hunt_score=hunt.score,
        platforms=platforms.platforms,
    )
    if duplicate_of:
        outcome.reason = describe_duplicate(reason, duplicate_of)
        log.info("article %s stored as duplicate of %s (%s)", article.id, duplicate_of, reason)
    return outcome


def _find_duplicate(session: Session, prepared: PreparedArticle) -> tuple[int | None, str | None]:
    same = find_article_by_content_hash(session, prepared.digest)
    if same is not None:
        return same.duplicate_of or same.id, "content_hash"
    near = find_near_duplicate(session, prepared.fingerprint, max_distance=NEAR_DUPLICATE_DISTANCE)
    if near is not None:
        return near[0].id, f"simhash:{near[1]}"
    return None, None


def describe_duplicate(reason: str | None, duplicate_of: int) -> str:
    if reason == "content_hash":
        return f"same text as article {duplicate_of}"
    if reason and reason.startswith("simhash:"):
        return f"near-duplicate of article {duplicate_of} (simhash distance {reason.split(':', 1)[1]})"
    return f"duplicate of article {duplicate_of}"
