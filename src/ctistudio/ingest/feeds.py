"""RSS and Atom feeds → entries, with feedparser (fed bytes we fetched ourselves; it never fetches)."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import feedparser

from ctistudio.ingest.errors import FetchFailed

_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)


@dataclass
class FeedEntry:
    link: str
    title: str
    author: str | None = None
    published_at: datetime | None = None
    summary_html: str | None = None
    content_html: str | None = None  # full content when the feed carries it (content:encoded, atom content)
    tags: list[str] = field(default_factory=list)


@dataclass
class ParsedFeed:
    title: str | None
    entries: list[FeedEntry]
    warning: str | None = None  # set when the feed was malformed but entries could still be read


def _struct_time(entry: Any, *keys: str) -> datetime | None:
    for key in keys:
        # dict.get, not entry.get: feedparser maps a missing updated_parsed to published_parsed with a
        # DeprecationWarning (found by the feed fuzz test: an item whose <pubDate> is empty)
        value = dict.get(entry, key) if isinstance(entry, dict) else entry.get(key)
        if value:
            try:
                return datetime.fromtimestamp(calendar.timegm(value), UTC)
            except (OverflowError, ValueError, TypeError):
                continue
    return None


def _entry(raw: Any) -> FeedEntry | None:
    link = raw.get("link") or next(
        (item.get("href") for item in raw.get("links", []) if item.get("rel", "alternate") == "alternate"), None
    )
    if not link:
        return None
    contents = raw.get("content") or []
    content_html = max((c.get("value", "") for c in contents), key=len, default="") or None
    return FeedEntry(
        link=str(link).strip(),
        title=" ".join(str(raw.get("title") or "").split()) or str(link),
        author=raw.get("author") or None,
        published_at=_struct_time(raw, "published_parsed", "updated_parsed", "created_parsed"),
        summary_html=raw.get("summary") or None,
        content_html=content_html,
        tags=[t.get("term") for t in raw.get("tags", []) if t.get("term")],
    )


def parse_feed(body: bytes, url: str, content_type: str = "application/xml") -> ParsedFeed:
    """Entries of an RSS/Atom document; a document with no readable entry and a parse error is refused."""
    if _ENTITY_DECLARATION.search(body):
        # No feed needs its own entities; nine nested ones (a "billion laughs") took the parser 2 s of CPU
        raise FetchFailed(
            f"{url}: the feed declares XML entities (<!ENTITY …>), which ctistudio does not expand",
            fix="Check rss_url in sources.yaml: real RSS/Atom feeds declare no entities.",
        )
    parsed = feedparser.parse(
        body, response_headers={"content-location": url, "content-type": content_type or "application/xml"}
    )
    entries = [entry for entry in (_entry(raw) for raw in parsed.entries) if entry is not None]
    problem = None
    if parsed.get("bozo"):
        exception = parsed.get("bozo_exception")
        problem = f"{exception.__class__.__name__}: {exception}" if exception else "malformed feed"
    if not entries and (problem or not parsed.get("version")):
        raise FetchFailed(
            f"{url}: not a readable RSS/Atom feed ({problem or 'no feed elements found'})",
            fix="Check rss_url in sources.yaml: it must point at the RSS or Atom feed itself.",
        )
    title = parsed.feed.get("title") if parsed.get("feed") else None
    warning = f"feed is malformed, read {len(entries)} entries anyway ({problem})" if problem else None
    return ParsedFeed(title=title, entries=entries, warning=warning)
