"""Sources: health, enable/disable, add, fetch now — through the store and the ingest service."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ctistudio.web.context import AppContext


class SourceView(BaseModel):
    id: str
    name: str
    url: str
    rss_url: str | None
    active: bool
    check_frequency: int
    origin: str
    last_checked_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    last_response_ms: float | None
    articles: int = 0

    @property
    def health(self) -> str:
        if self.last_checked_at is None:
            return "never checked"
        return "failing" if self.consecutive_failures else "ok"


class SourceCreate(BaseModel):
    """A new source (the fields of a sources.yaml entry)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=2, max_length=100, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    name: str = Field(min_length=1, max_length=300)
    url: str = Field(min_length=8, max_length=2000)
    rss_url: str | None = Field(None, max_length=2000)
    check_frequency: int = Field(3600, ge=300, le=7 * 86400)

    @field_validator("url", "rss_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


class SourceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    active: bool


def _view(source: Any, counts: dict[str, int]) -> SourceView:
    data = {name: getattr(source, name) for name in SourceView.model_fields if name != "articles"}
    return SourceView(**data, articles=counts.get(source.id, 0))


def list_sources(ctx: AppContext) -> list[SourceView]:
    from ctistudio.store import sources as repo

    with ctx.require_store().session() as session:
        counts = repo.article_counts_by_source(session)
        return [_view(s, counts) for s in repo.list_sources(session)]


def add_source(ctx: AppContext, new: SourceCreate) -> SourceView:
    from ctistudio.store import sources as repo

    definition = repo.SourceDefinition(**new.model_dump())
    with ctx.require_store().session() as session:
        return _view(repo.add_source(session, definition), {})


def set_active(ctx: AppContext, source_id: str, active: bool) -> SourceView:
    from ctistudio.store import sources as repo

    with ctx.require_store().session() as session:
        source = repo.set_source_active(session, source_id, active)
        return _view(source, repo.article_counts_by_source(session))


async def fetch_now(ctx: AppContext, source_id: str) -> dict[str, Any]:
    """Check one source now (ignoring its schedule); the outcome as the ingest service reports it."""
    from ctistudio.web.ingest_views import fetch_source_now

    return await fetch_source_now(ctx, source_id)
