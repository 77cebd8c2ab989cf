"""Manual ingestion (paste, URL, upload) and "fetch now" through the ingest service."""

from __future__ import annotations

from dataclasses import asdict
from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ctistudio.ingest import IngestService
from ctistudio.web.context import AppContext
from ctistudio.web.offload import off_loop

MAX_PASTE_CHARS = 2_000_000
WORKER_PROCESS_CHARS = 500_000  # longer articles are scored in the worker process (spawned on first use)


class PastedArticle(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=MAX_PASTE_CHARS, description="Text or Markdown (front matter ok).")
    title: str | None = Field(None, max_length=300)
    url: str | None = Field(None, max_length=2000, pattern=r"^https?://")


class ArticleUrl(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=8, max_length=2000, pattern=r"^https?://")


class IngestResult(BaseModel):
    """What happened: ``new``, ``duplicate``, ``exists``, ``skipped``, ``refused`` or ``failed``, with why."""

    status: str
    article_id: int | None = None
    duplicate_of: int | None = None
    title: str | None = None
    url: str | None = None
    reason: str | None = None
    hunt_score: int | None = None
    platforms: list[str] = Field(default_factory=list)
    chat_index: str | None = None  # "indexed" or why chat cannot find the article yet


def ingest_service(ctx: AppContext) -> IngestService:
    return IngestService(ctx.require_store(), ctx.settings(), prepare=partial(_prepare, ctx))


def _prepare(ctx: AppContext, candidate: Any) -> Any:
    """Score and fingerprint an article: big ones in the worker process (see :class:`WorkerProcess`)."""
    from ctistudio.ingest.intake import prepare_candidate

    if len(candidate.text) < WORKER_PROCESS_CHARS:
        return prepare_candidate(candidate)
    return ctx.worker.run(prepare_candidate, candidate)


def _result(outcome: Any) -> IngestResult:
    return IngestResult(**{k: v for k, v in asdict(outcome).items() if k in IngestResult.model_fields})


async def ingest_text(ctx: AppContext, pasted: PastedArticle) -> IngestResult:
    """Store pasted text; the scoring and fingerprints (linear in its length) run in a worker thread."""
    service = ingest_service(ctx)
    return _result(await off_loop(partial(service.ingest_text, pasted.text, title=pasted.title, url=pasted.url)))


async def ingest_url(ctx: AppContext, url: str) -> IngestResult:
    return _result(await ingest_service(ctx).ingest_url(url))


async def ingest_upload(ctx: AppContext, data: bytes, filename: str | None) -> IngestResult:
    service = ingest_service(ctx)
    return _result(await off_loop(service.ingest_bytes, data, filename))


async def fetch_source_now(ctx: AppContext, source_id: str) -> dict[str, Any]:
    """Check one source now, whatever its schedule; the check's outcome (status, counts, error) and
    ``chat_index``: ``indexed`` when its new articles were indexed for chat, why not, or None (none new)."""
    from ctistudio.web.chat_views import index_articles

    service = ingest_service(ctx)
    new = _new_articles_collector()
    report = await service.check_sources(source_ids=[source_id], force=True, progress=new)
    outcome = report.checks[source_id]
    data = asdict(outcome)
    data["started_at"] = str(data.get("started_at"))
    keys = ("status", "http_status", "entries_seen", "articles_new", "articles_duplicate", "error")
    result: dict[str, Any] = {k: data[k] for k in keys}
    result["chat_index"] = None
    if new.ids:
        indexed = await index_articles(ctx, new.ids)
        result["chat_index"] = "indexed" if indexed.indexed else indexed.detail
    return result


def _new_articles_collector() -> Any:
    """An ingest progress hook collecting the ids of the articles stored as new (to index them for chat)."""
    from ctistudio.ingest.progress import Progress

    class NewArticles(Progress):
        def __init__(self) -> None:
            self.ids: list[int] = []

        def entry_finished(self, outcome: Any) -> None:
            if outcome.status == "new" and outcome.article_id is not None:
                self.ids.append(outcome.article_id)

    return NewArticles()
