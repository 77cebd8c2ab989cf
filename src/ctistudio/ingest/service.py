"""The ingestion service: what the CLI, the web app and workers call to bring articles in.

    service = IngestService(store, settings)
    await service.check_sources(once=True)          # poll due sources from sources.yaml
    await service.ingest_feed(url)                  # any RSS/Atom feed
    await service.ingest_url(url)                   # one article page (HTML, PDF, text)
    service.ingest_file(path) / ingest_bytes(data, filename) / ingest_text(text) / ingest_demo()

Manual inputs raise :class:`~ctistudio.ingest.errors.Refused` (and ``FetchFailed`` for URLs) with the
reason; duplicates are not errors (see :mod:`ctistudio.ingest.intake`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from ctistudio.config import Settings
from ctistudio.ingest.documents import Document, document_from_bytes, markdown_document
from ctistudio.ingest.errors import FetchFailed, Refused
from ctistudio.ingest.harvest import Harvester, HarvestResult, page_from_response
from ctistudio.ingest.http_fetch import PAGE_TYPES, Fetcher, FetchLimits
from ctistudio.ingest.intake import ArticleCandidate, IngestOutcome, PreparedArticle, prepare_candidate, save_candidate
from ctistudio.ingest.progress import Progress
from ctistudio.ingest.sources_config import SourceOptions, load_sources
from ctistudio.resources import demo_article
from ctistudio.store import Store
from ctistudio.store.sources import CheckOutcome, due_sources, get_source, next_check_at, sync_sources
from ctistudio.store.types import utcnow

log = logging.getLogger(__name__)
MIN_MANUAL_WORDS = 5


@dataclass
class SourcesRunReport:
    """The result of one pass over the due sources."""

    checks: dict[str, CheckOutcome] = field(default_factory=dict)

    @property
    def articles_new(self) -> int:
        return sum(c.articles_new for c in self.checks.values())

    @property
    def articles_duplicate(self) -> int:
        return sum(c.articles_duplicate for c in self.checks.values())

    @property
    def failed(self) -> dict[str, str]:
        return {sid: c.error or c.status for sid, c in self.checks.items() if c.status in ("failed", "refused")}


class IngestService:
    """Ingestion over one store; ``limits``/``concurrency`` default to the settings."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        limits: FetchLimits | None = None,
        concurrency: int | None = None,
        prepare: Callable[[ArticleCandidate], PreparedArticle] = prepare_candidate,
    ) -> None:
        self.store = store
        self.settings = settings
        self.prepare = prepare  # scores and fingerprints manual input (the web app sends big ones to a process)
        self.limits = limits or FetchLimits.from_settings(settings)
        self.concurrency = concurrency or settings.fetch_concurrency

    def fetcher(self) -> Fetcher:
        return Fetcher(self.limits, concurrency=self.concurrency)

    # -- sources -----------------------------------------------------------------------------------
    def sync_sources(self, path: Path | None = None) -> tuple[int, int]:
        """Load sources.yaml (``path``, CTISTUDIO_SOURCES_FILE or the packaged list) into the store."""
        definitions = load_sources(self.settings, path)
        with self.store.session() as session:
            return sync_sources(session, definitions)

    async def check_sources(
        self, *, source_ids: list[str] | None = None, force: bool = False, progress: Progress | None = None
    ) -> SourcesRunReport:
        """Check every due active source (or ``source_ids``) concurrently; one failing never stops the rest."""
        with self.store.session() as session:
            if source_ids:
                sources = [get_source(session, sid) for sid in source_ids]
            else:
                sources = due_sources(session, force=force)
        progress = progress or Progress()
        progress.sources_started(len(sources))
        report = SourcesRunReport()
        async with self.fetcher() as fetcher:
            harvester = Harvester(self.store, fetcher, progress)
            outcomes = await asyncio.gather(*(harvester.check_source(source) for source in sources))
        report.checks = {source.id: outcome for source, outcome in zip(sources, outcomes, strict=True)}
        return report

    async def run_forever(
        self,
        *,
        progress: Progress | None = None,
        stop: asyncio.Event | None = None,
        after_pass: Callable[[SourcesRunReport], Awaitable[object]] | None = None,
    ) -> None:
        """Check sources as they fall due until ``stop`` is set (``ctistudio ingest sources`` without --once);
        ``after_pass`` runs after each pass (the CLI indexes the new articles for search there)."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            report = await self.check_sources(progress=progress)
            if after_pass is not None:
                await after_pass(report)
            with self.store.session() as session:
                upcoming = next_check_at(session)
            wait = 300.0 if upcoming is None else max(5.0, (upcoming - utcnow()).total_seconds())
            log.info("next source check in %.0f s", wait)
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
            except TimeoutError:
                continue

    async def ingest_feed(self, url: str, *, progress: Progress | None = None) -> HarvestResult:
        """Store the new entries of any RSS/Atom feed (not registered as a source)."""
        options = SourceOptions(min_content_length=200)
        async with self.fetcher() as fetcher:
            return await Harvester(self.store, fetcher, progress).harvest(url, options)

    # -- manual input ------------------------------------------------------------------------------
    async def ingest_url(self, url: str) -> IngestOutcome:
        """Fetch one article page (HTML, PDF or text) and store it."""
        try:
            async with self.fetcher() as fetcher:
                response = await fetcher.fetch(url, accept=PAGE_TYPES)
            page = await asyncio.to_thread(page_from_response, response)
        except (Refused, FetchFailed) as exc:
            log.warning("url %s not ingested: %s", url, exc.message)
            raise
        document = Document(page.text, "html", page.title, page.author, page.published_at)
        extra = {"extractor": page.extractor, "final_url": response.final_url}
        return await asyncio.to_thread(partial(self._store_document, document, origin="url", url=url, extra=extra))

    def ingest_bytes(self, data: bytes, filename: str | None, title: str | None = None) -> IngestOutcome:
        """Store an uploaded file (HTML, PDF, Markdown, text) after the size and type checks."""
        try:
            document = document_from_bytes(data, filename, max_bytes=self.settings.max_upload_bytes)
        except Refused as exc:
            log.warning("upload refused: %s", exc.message)
            raise
        document.title = title or document.title
        return self._store_document(document, origin="upload", url=document.url)

    def ingest_file(self, path: Path, title: str | None = None) -> IngestOutcome:
        if not path.is_file():
            raise Refused(f"{path}: no such file", fix="Check the path.")
        size = path.stat().st_size
        if size > self.settings.max_upload_bytes:
            raise Refused(
                f"{path.name}: {size:,} bytes is over the upload limit of {self.settings.max_upload_bytes:,} bytes",
                fix="Use a smaller file or raise CTISTUDIO_MAX_UPLOAD_BYTES.",
            )
        return self.ingest_bytes(path.read_bytes(), path.name, title)

    def ingest_text(self, text: str, *, title: str | None = None, url: str | None = None) -> IngestOutcome:
        """Store pasted text (Markdown with an optional YAML front matter is understood)."""
        if len(text.encode("utf-8")) > self.settings.max_upload_bytes:
            raise Refused(
                f"pasted text is over the limit of {self.settings.max_upload_bytes:,} bytes",
                fix="Paste less, or raise CTISTUDIO_MAX_UPLOAD_BYTES.",
            )
        document = markdown_document(text)
        document.title = title or document.title
        return self._store_document(document, origin="text", url=url or document.url)

    def ingest_demo(self) -> IngestOutcome:
        """Store the packaged demo article (idempotent: a second call reports ``exists``)."""
        document = markdown_document(demo_article())
        return self._store_document(document, origin="demo", url=document.url)

    def _store_document(
        self, document: Document, *, origin: str, url: str | None, extra: dict | None = None
    ) -> IngestOutcome:
        if len(document.text.split()) < MIN_MANUAL_WORDS:
            raise Refused(
                f"only {len(document.text.split())} words of text: too little to be an article",
                fix="Give the article's full text.",
            )
        candidate = ArticleCandidate(
            title=(document.title or document.text.strip().splitlines()[0])[:300],
            text=document.text,
            origin=origin,
            url=url,
            author=document.author,
            published_at=document.published_at,
            content_format=document.content_format,
            extra={**document.extra, **(extra or {})},
        )
        prepared = self.prepare(candidate)
        with self.store.session() as session:
            outcome = save_candidate(session, prepared)
        log.info("%s ingest: %s article %s %s", origin, outcome.status, outcome.article_id, outcome.reason or "")
        return outcome
