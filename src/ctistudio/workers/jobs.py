"""The jobs besides pipeline runs, as plain async functions: the Celery tasks (:mod:`ctistudio.workers.tasks`)
and the in-process schedule (``ctistudio serve --schedule``) call the same ones.

- :func:`poll_sources`: check the sources that are due (each on its own interval), index the new articles
  for search, and start a pipeline run for each new article whose hunt score reaches
  ``CTISTUDIO_AUTORUN_MIN_SCORE``;
- :func:`index_articles`: chunk and embed stored articles for search and chat;
- :func:`refresh_sigma` : rebuild the SigmaHQ similarity index (:mod:`ctistudio.sigma.refresh`).

Each is idempotent: a poll delivered twice finds the articles stored the first time (``exists``), indexing
skips indexed articles, a refresh rebuilds the same index.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ctistudio.config import Settings
from ctistudio.ingest.intake import IngestOutcome
from ctistudio.ingest.progress import Progress
from ctistudio.ingest.service import IngestService
from ctistudio.llm import Gateway
from ctistudio.store import Store

log = logging.getLogger(__name__)

StartRun = Callable[[int], Awaitable[int]]  # article id → run id (enqueued, or started in this process)


class _NewArticles(Progress):
    """Collects the ids and hunt scores of the articles a poll stored as new."""

    def __init__(self) -> None:
        self.found: dict[int, int] = {}

    def entry_finished(self, outcome: IngestOutcome) -> None:
        if outcome.status == "new" and outcome.article_id is not None:
            self.found[outcome.article_id] = outcome.hunt_score or 0


async def poll_sources(settings: Settings, store: Store, gateway: Gateway, start_run: StartRun) -> dict[str, Any]:
    """One pass over the due sources; new articles are indexed and, above the autorun score, run."""
    new = _NewArticles()
    report = await IngestService(store, settings).check_sources(progress=new)
    indexed = await index_articles(settings, store, gateway, list(new.found))
    runs: list[int] = []
    threshold = settings.autorun_min_score
    if threshold is not None:
        for article_id, score in sorted(new.found.items()):
            if score >= threshold:
                runs.append(await start_run(article_id))
    summary = {
        "sources": len(report.checks),
        "articles_new": sorted(new.found),
        "failed": report.failed,
        "indexed": indexed,
        "runs": runs,
    }
    log.info("sources polled: %s", summary)
    return summary


async def index_articles(settings: Settings, store: Store, gateway: Gateway, article_ids: list[int]) -> str | None:
    """Chunk and embed ``article_ids`` for search; ``indexed``, the reason they wait, or None (nothing new)."""
    if not article_ids:
        return None
    from ctistudio.rag import Retriever, index_after_ingest  # the RAG stack loads only when there is work

    result = await index_after_ingest(Retriever(store, gateway, settings=settings), article_ids)
    return result.warning() if result.reason is not None else "indexed"


async def refresh_sigma(settings: Settings, gateway: Gateway) -> dict[str, Any]:
    from ctistudio.sigma.refresh import refresh_sigma_index

    return (await refresh_sigma_index(settings, gateway)).model_dump()
