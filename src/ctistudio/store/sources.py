"""Sources and their checks: definitions (from sources.yaml or ``sources add``), health, poll history."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ctistudio.errors import InvalidInput, NotFound
from ctistudio.store.models import Article, Source, SourceCheck
from ctistudio.store.types import utcnow


@dataclass
class SourceDefinition:
    """What a source *is* (as opposed to its health): the fields of one sources.yaml entry."""

    id: str
    name: str
    url: str
    rss_url: str | None = None
    check_frequency: int = 3600
    active: bool = True
    config: dict[str, Any] = field(default_factory=dict)


def get_source(session: Session, source_id: str) -> Source:
    source = session.get(Source, source_id)
    if source is None:
        raise NotFound(f"no source with id {source_id!r}", fix="See `ctistudio sources list` for the ids.")
    return source


def find_source(session: Session, source_id: str) -> Source | None:
    return session.get(Source, source_id)


def list_sources(session: Session, *, active: bool | None = None) -> list[Source]:
    query = select(Source).order_by(Source.name)
    if active is not None:
        query = query.where(Source.active == active)
    return list(session.scalars(query))


def add_source(session: Session, definition: SourceDefinition, *, origin: str = "user") -> Source:
    """Create a new source; refuses an id that exists already."""
    if session.get(Source, definition.id) is not None:
        raise InvalidInput(
            f"a source with id {definition.id!r} exists already",
            fix="Choose another --id, or `ctistudio sources list` to see it.",
        )
    source = Source(origin=origin, consecutive_failures=0, **_definition_fields(definition))
    session.add(source)
    session.flush()
    return source


def sync_sources(session: Session, definitions: Iterable[SourceDefinition]) -> tuple[int, int]:
    """Insert or update sources from definitions (sources.yaml); returns ``(added, updated)``.

    For a source that exists already the definition fields are updated but ``active`` is kept: a source
    disabled with ``sources disable`` (or in the UI) stays disabled when the file is loaded again.
    """
    added = updated = 0
    for definition in definitions:
        source = session.get(Source, definition.id)
        if source is None:
            add_source(session, definition, origin="yaml")
            added += 1
            continue
        fields = _definition_fields(definition)
        fields.pop("active")
        changed = False
        for key, value in fields.items():
            if getattr(source, key) != value:
                setattr(source, key, value)
                changed = True
        updated += changed
    session.flush()
    return added, updated


def set_source_active(session: Session, source_id: str, active: bool) -> Source:
    source = get_source(session, source_id)
    source.active = active
    session.flush()
    return source


def due_sources(session: Session, *, now: datetime | None = None, force: bool = False) -> list[Source]:
    """Active sources whose check frequency has elapsed since their last check (all active ones if ``force``)."""
    now = now or utcnow()
    due = []
    for source in list_sources(session, active=True):
        last = source.last_checked_at
        if force or last is None or last + timedelta(seconds=source.check_frequency) <= now:
            due.append(source)
    return due


def next_check_at(session: Session) -> datetime | None:
    """When the next active source becomes due (None when no source is active)."""
    times = [
        (s.last_checked_at + timedelta(seconds=s.check_frequency)) if s.last_checked_at else utcnow()
        for s in list_sources(session, active=True)
    ]
    return min(times) if times else None


@dataclass
class CheckOutcome:
    """The result of one poll, as the ingest service reports it."""

    status: str  # ok | not_modified | failed | refused
    started_at: datetime
    http_status: int | None = None
    response_ms: float | None = None
    entries_seen: int = 0
    articles_new: int = 0
    articles_duplicate: int = 0
    articles_skipped: int = 0
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None


def record_source_check(session: Session, source_id: str, outcome: CheckOutcome) -> SourceCheck:
    """Store one check and update the source's health (last success, consecutive failures, timing)."""
    source = get_source(session, source_id)
    now = utcnow()
    check = SourceCheck(
        source_id=source_id,
        started_at=outcome.started_at,
        finished_at=now,
        status=outcome.status,
        http_status=outcome.http_status,
        response_ms=outcome.response_ms,
        entries_seen=outcome.entries_seen,
        articles_new=outcome.articles_new,
        articles_duplicate=outcome.articles_duplicate,
        articles_skipped=outcome.articles_skipped,
        error=outcome.error,
        details=outcome.details,
    )
    session.add(check)
    source.last_checked_at = now
    source.last_response_ms = outcome.response_ms
    if outcome.status in ("ok", "not_modified"):
        source.last_success_at = now
        source.consecutive_failures = 0
        source.last_error = None
        if outcome.etag is not None or outcome.last_modified is not None or outcome.status == "ok":
            source.etag = outcome.etag
            source.last_modified = outcome.last_modified
    else:
        source.consecutive_failures = (source.consecutive_failures or 0) + 1
        source.last_error = outcome.error
    session.flush()
    return check


def list_source_checks(session: Session, source_id: str, *, limit: int = 20) -> list[SourceCheck]:
    query = (
        select(SourceCheck)
        .where(SourceCheck.source_id == source_id)
        .order_by(SourceCheck.started_at.desc(), SourceCheck.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def article_counts_by_source(session: Session) -> dict[str, int]:
    query = select(Article.source_id, func.count()).where(Article.source_id.is_not(None)).group_by(Article.source_id)
    return {str(source_id): int(count) for source_id, count in session.execute(query)}


def _definition_fields(definition: SourceDefinition) -> dict[str, Any]:
    return {
        "id": definition.id,
        "name": definition.name,
        "url": definition.url,
        "rss_url": definition.rss_url,
        "check_frequency": definition.check_frequency,
        "active": definition.active,
        "config": dict(definition.config),
    }


def source_as_dict(source: Source, *, article_count: int | None = None) -> dict[str, Any]:
    """Stable JSON shape of a source with its health (CLI ``--json`` and API responses)."""

    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": source.id,
        "name": source.name,
        "url": source.url,
        "rss_url": source.rss_url,
        "active": source.active,
        "check_frequency": source.check_frequency,
        "origin": source.origin,
        "config": source.config,
        "health": {
            "last_checked_at": when(source.last_checked_at),
            "last_success_at": when(source.last_success_at),
            "consecutive_failures": source.consecutive_failures,
            "last_error": source.last_error,
            "last_response_ms": source.last_response_ms,
        },
        "article_count": article_count,
    }


def check_as_dict(check: SourceCheck) -> dict[str, Any]:
    return {
        "id": check.id,
        "source_id": check.source_id,
        "started_at": check.started_at.isoformat() if check.started_at else None,
        "finished_at": check.finished_at.isoformat() if check.finished_at else None,
        "status": check.status,
        "http_status": check.http_status,
        "response_ms": check.response_ms,
        "entries_seen": check.entries_seen,
        "articles_new": check.articles_new,
        "articles_duplicate": check.articles_duplicate,
        "articles_skipped": check.articles_skipped,
        "error": check.error,
        "details": check.details,
    }
