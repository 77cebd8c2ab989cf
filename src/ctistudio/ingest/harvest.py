"""From a feed URL to stored articles: fetch the feed, pick new entries, fetch and extract pages, save.

Used for registered sources (:meth:`Harvester.check_source`, which records a source check and the
source's health) and for ad-hoc feeds (``ctistudio ingest feed URL``). A refusal or failure of one entry
is recorded with its reason in the check's details and never stops the other entries; a failure of one
source never stops the other sources.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ctistudio.ingest.canonical_url import canonical_url
from ctistudio.ingest.documents import markdown_document, pdf_document
from ctistudio.ingest.errors import FetchFailed, Refused
from ctistudio.ingest.feeds import FeedEntry, parse_feed
from ctistudio.ingest.html_text import ExtractedPage, extract_article, extract_with_hints
from ctistudio.ingest.http_fetch import FEED_TYPES, PAGE_TYPES, Fetcher, FetchResult
from ctistudio.ingest.intake import ArticleCandidate, IngestOutcome, prepare_candidate, save_candidate
from ctistudio.ingest.progress import Progress
from ctistudio.ingest.sources_config import SourceOptions, source_options
from ctistudio.store import Store
from ctistudio.store.articles import known_canonical_urls
from ctistudio.store.models import Source
from ctistudio.store.sources import CheckOutcome, record_source_check
from ctistudio.store.types import utcnow

log = logging.getLogger(__name__)
MAX_LISTED = 50  # refusals/skips listed per check (the counts are always complete)


@dataclass
class HarvestResult:
    status: str  # ok | not_modified
    http_status: int | None
    response_ms: float | None
    etag: str | None = None
    last_modified: str | None = None
    entries_seen: int = 0
    known: int = 0
    outcomes: list[IngestOutcome] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    warning: str | None = None

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def details(self) -> dict[str, object]:
        problems = [
            {"url": o.url or "", "status": o.status, "reason": o.reason or ""}
            for o in self.outcomes
            if o.status in ("refused", "failed")
        ]
        duplicates = [
            {"url": o.url or "", "article_id": o.article_id, "duplicate_of": o.duplicate_of, "reason": o.reason}
            for o in self.outcomes
            if o.status == "duplicate"
        ]
        skipped = self.skipped + [
            {"url": o.url or "", "reason": o.reason or ""} for o in self.outcomes if o.status == "skipped"
        ]
        return {
            "known": self.known,
            "refused": problems[:MAX_LISTED],
            "skipped": skipped[:MAX_LISTED],
            "duplicates": duplicates[:MAX_LISTED],
            "feed_warning": self.warning,
        }


def page_from_response(result: FetchResult, options: SourceOptions | None = None) -> ExtractedPage:
    """Clean text and metadata of a fetched page (HTML, PDF, plain text or Markdown)."""
    if result.content_type == "application/pdf":
        document = pdf_document(result.body, result.final_url)
        return ExtractedPage(document.title, document.text, document.author, document.published_at, "pypdf")
    text = result.text()
    if result.content_type in ("text/plain", "text/markdown"):
        document = markdown_document(text, kind="text")
        return ExtractedPage(document.title, document.text, document.author, document.published_at, "text")
    hints = (options or SourceOptions()).extract
    return extract_with_hints(text, result.final_url, hints.content_selector, hints.title_selector, hints.jsonld)


def _domain_allowed(url: str, domains: list[str]) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return not domains or any(host == d or host.endswith("." + d) for d in domains)


def entry_skip_reason(entry: FeedEntry, options: SourceOptions) -> str | None:
    """Why a feed entry is not wanted for this source (None if it is)."""
    if not _domain_allowed(entry.link, options.allowed_domains):
        return f"link outside allowed_domains {options.allowed_domains}"
    if options.post_url_regex and not re.search(options.post_url_regex, entry.link):
        return "link does not match post_url_regex"
    title = entry.title.lower()
    if options.title_filter_keywords and not any(k.lower() in title for k in options.title_filter_keywords):
        return "title has none of title_filter_keywords"
    excluded = next((k for k in options.title_exclude_keywords if k.lower() in title), None)
    if excluded:
        return f"title contains excluded keyword {excluded!r}"
    return None


class Harvester:
    """Turns feeds into stored articles through one :class:`Fetcher` (shared limits and politeness)."""

    def __init__(self, store: Store, fetcher: Fetcher, progress: Progress | None = None) -> None:
        self.store = store
        self.fetcher = fetcher
        self.progress = progress or Progress()

    async def check_source(self, source: Source) -> CheckOutcome:
        """Poll one source and record the check (health, counts, every refusal with its reason)."""
        started = utcnow()
        outcome = CheckOutcome(status="failed", started_at=started)
        try:
            if not source.rss_url:
                raise Refused(f"{source.id}: no rss_url", fix="Add the source's RSS/Atom feed URL as rss_url.")
            result = await self.harvest(
                source.rss_url,
                source_options(source.config),
                source_id=source.id,
                etag=source.etag,
                last_modified=source.last_modified,
            )
            outcome = CheckOutcome(
                status=result.status,
                started_at=started,
                http_status=result.http_status,
                response_ms=result.response_ms,
                entries_seen=result.entries_seen,
                articles_new=result.count("new"),
                articles_duplicate=result.count("duplicate"),
                articles_skipped=len(result.skipped) + sum(map(result.count, ("skipped", "refused", "failed"))),
                details=result.details(),
                etag=result.etag,
                last_modified=result.last_modified,
            )
        except Refused as exc:
            outcome = CheckOutcome(status="refused", started_at=started, error=exc.message)
        except FetchFailed as exc:
            outcome = CheckOutcome(status="failed", started_at=started, error=exc.message, http_status=exc.status_code)
        if outcome.error:
            log.warning("source %s: %s — %s", source.id, outcome.status, outcome.error)
        with self.store.session() as session:
            record_source_check(session, source.id, outcome)
        self.progress.source_finished(source.id, outcome)
        return outcome

    async def harvest(
        self,
        feed_url: str,
        options: SourceOptions,
        *,
        source_id: str | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> HarvestResult:
        """Fetch ``feed_url`` (conditionally) and store its new entries; raises only for the feed itself."""
        response = await self.fetcher.fetch(
            feed_url, accept=FEED_TYPES, etag=etag, last_modified=last_modified, check_robots=options.respect_robots
        )
        result = HarvestResult(
            "ok", response.status_code, response.elapsed_ms, etag=response.etag, last_modified=response.last_modified
        )
        if response.not_modified:
            result.status = "not_modified"
            result.etag, result.last_modified = response.etag or etag, response.last_modified or last_modified
            return result
        feed = parse_feed(response.body, feed_url, response.content_type)
        result.warning = feed.warning
        entries = feed.entries[: options.max_entries]
        result.entries_seen = len(entries)
        wanted = self._new_entries(entries, options, result)
        self.progress.entries_queued(len(wanted))
        result.outcomes = list(await asyncio.gather(*(self._take_entry(entry, options, source_id) for entry in wanted)))
        return result

    def _new_entries(self, entries: list[FeedEntry], options: SourceOptions, result: HarvestResult) -> list[FeedEntry]:
        by_canonical: dict[str, FeedEntry] = {}
        for entry in entries:
            reason = entry_skip_reason(entry, options)
            try:
                key = canonical_url(entry.link)
            except Exception as exc:
                reason = reason or f"invalid link ({exc})"
                key = ""
            if reason:
                result.skipped.append({"url": entry.link, "reason": reason})
            elif key not in by_canonical:
                by_canonical[key] = entry
        with self.store.session() as session:
            known = known_canonical_urls(session, list(by_canonical))
        result.known = len(known)
        return [entry for key, entry in by_canonical.items() if key not in known]

    async def _take_entry(self, entry: FeedEntry, options: SourceOptions, source_id: str | None) -> IngestOutcome:
        outcome = await self._entry_outcome(entry, options, source_id)
        if outcome.status in ("refused", "failed"):
            log.info("entry %s %s: %s", entry.link, outcome.status, outcome.reason)
        self.progress.entry_finished(outcome)
        return outcome

    async def _entry_outcome(self, entry: FeedEntry, options: SourceOptions, source_id: str | None) -> IngestOutcome:
        feed_text = entry.content_html or entry.summary_html or ""
        page: ExtractedPage | None = None
        problem: IngestOutcome | None = None
        if not options.rss_only:
            try:
                response = await self.fetcher.fetch(entry.link, accept=PAGE_TYPES, check_robots=options.respect_robots)
                page = await asyncio.to_thread(page_from_response, response, options)
            except Refused as exc:
                return IngestOutcome("refused", entry.link, entry.title, reason=exc.message)
            except FetchFailed as exc:
                problem = IngestOutcome("failed", entry.link, entry.title, reason=exc.message)
        if feed_text and (page is None or len(page.text) < options.min_content_length):
            from_feed = await asyncio.to_thread(extract_article, f"<html><body>{feed_text}</body></html>")
            if page is None or len(from_feed.text) > len(page.text):
                page, problem = from_feed, None
                page.extractor = "feed-content"
        if page is None:
            return problem or IngestOutcome("failed", entry.link, entry.title, reason="no content")
        if len(page.text) < options.min_content_length:
            return IngestOutcome(
                "skipped",
                entry.link,
                entry.title,
                reason=f"text too short ({len(page.text)} < min_content_length {options.min_content_length})",
            )
        candidate = ArticleCandidate(
            title=entry.title or page.title or entry.link,
            text=page.text,
            origin="feed",
            url=entry.link,
            author=entry.author or page.author,
            published_at=entry.published_at or page.published_at,
            source_id=source_id,
            extra={"extractor": page.extractor, "feed_tags": entry.tags},
        )
        prepared = await asyncio.to_thread(prepare_candidate, candidate)
        with self.store.session() as session:
            return save_candidate(session, prepared)
