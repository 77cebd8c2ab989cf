"""HTML → clean article text (Markdown) plus title, author and date, with trafilatura.

The result is plain text: scripts, styles, event handlers and links are dropped, nothing of the page is
kept as markup, so nothing of it can run later. Code blocks are kept as fenced Markdown because command
lines are what hunters need.
"""

from __future__ import annotations

import html as html_entities
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import trafilatura
from lxml import etree
from lxml import html as lxml_html
from trafilatura.xml import xmltotxt

log = logging.getLogger(__name__)

_BLANK_LINES = re.compile(r"\n{3,}")
_TITLE_TAG = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


@dataclass
class ExtractedPage:
    title: str | None
    text: str
    author: str | None = None
    published_at: datetime | None = None
    extractor: str = "trafilatura"


def parse_date(value: str | None) -> datetime | None:
    """An ISO-ish date or datetime as an aware UTC datetime (None if it is not one)."""
    if not value:
        return None
    text = str(value).strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def tidy_text(text: str) -> str:
    """Trim trailing spaces, drop NULs and control characters, collapse runs of blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = "".join(ch for ch in text if ch in "\n\t" or ch >= " ")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def extract_article(html: str, url: str | None = None) -> ExtractedPage:
    """The main text of an article page (Markdown) with its metadata; falls back to all visible text."""
    document = None
    try:
        document = trafilatura.bare_extraction(
            html,
            url=url,
            with_metadata=True,
            include_formatting=True,
            include_comments=False,
            include_tables=True,
            include_links=False,
            include_images=False,
            favor_recall=True,
            output_format="markdown",
            # only dates the page states (meta, JSON-LD, URL, time elements) — never "© 2026" guessed as a date
            date_extraction_params={"extensive_search": False, "original_date": True},
        )
    except (ValueError, etree.LxmlError) as exc:  # malformed markup trafilatura could not take
        log.info("trafilatura failed on %s: %s", url or "page", exc)
    text = ""
    if document is not None and document.body is not None:
        text = tidy_text(xmltotxt(document.body, include_formatting=True) or "")
    if text:
        return ExtractedPage(
            title=_clean_title(document.title) if document else None,
            text=text,
            author=(document.author or None) if document else None,
            published_at=parse_date(document.date) if document else None,
        )
    return ExtractedPage(title=_title_tag(html), text=visible_text(html), extractor="visible-text")


def visible_text(html: str) -> str:
    """All text a browser would show (scripts, styles, templates and comments removed)."""
    try:
        root = lxml_html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return ""
    for element in root.xpath("//script|//style|//noscript|//template|//iframe|//object|//embed|//svg"):
        element.drop_tree()
    for comment in root.xpath("//comment()"):
        comment.drop_tree()
    body = root.find("body")
    return tidy_text((body if body is not None else root).text_content())


def _title_tag(html: str) -> str | None:
    match = _TITLE_TAG.search(html[:20000])
    return _clean_title(html_entities.unescape(match.group(1))) if match else None


def _clean_title(title: str | None) -> str | None:
    if not title:
        return None
    title = " ".join(title.split())
    return title[:1000] or None


# -- per-source hints -----------------------------------------------------------------------------
_SIMPLE_SELECTOR = re.compile(r"^([a-zA-Z][\w-]*)?((?:[#.][\w-]+)*)$")
_JSONLD = re.compile(r"<script[^>]+application/ld\+json[^>]*>(.*?)</script>", re.IGNORECASE | re.DOTALL)
_ARTICLE_TYPES = {"article", "newsarticle", "blogposting", "techarticle", "report", "scholarlyarticle"}


def css_to_xpath(selector: str) -> str:
    """XPath for a simple CSS selector: ``tag``, ``#id``, ``.class``, combined, separated by spaces."""
    steps = []
    for part in selector.split():
        match = _SIMPLE_SELECTOR.match(part)
        if not match:
            raise ValueError(f"unsupported CSS selector part {part!r} (use tag, #id, .class and spaces)")
        tag, rest = match.group(1) or "*", match.group(2)
        predicates = []
        for kind, name in re.findall(r"([#.])([\w-]+)", rest):
            if kind == "#":
                predicates.append(f"[@id='{name}']")
            else:
                predicates.append(f"[contains(concat(' ', normalize-space(@class), ' '), ' {name} ')]")
        steps.append(tag + "".join(predicates))
    return "//" + "//".join(steps)


def select_html(html: str, selector: str) -> str | None:
    """The outer HTML of the elements ``selector`` matches (None when nothing matches)."""
    try:
        root = lxml_html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return None
    found = root.xpath(css_to_xpath(selector))
    if not found:
        return None
    inner = "".join(lxml_html.tostring(element, encoding="unicode") for element in found)
    return f"<html><body><article>{inner}</article></body></html>"


def jsonld_metadata(html: str) -> dict[str, object]:
    """Title, author and date from the page's schema.org Article JSON-LD (empty dict when there is none)."""
    for block in _JSONLD.findall(html[:500_000]):
        try:
            data = json.loads(block.strip())
        except ValueError:
            continue
        for item in _jsonld_items(data):
            kinds = item.get("@type")
            kinds = {k.lower() for k in (kinds if isinstance(kinds, list) else [kinds]) if isinstance(k, str)}
            if kinds & _ARTICLE_TYPES:
                return {
                    "title": _clean_title(str(item.get("headline") or item.get("name") or "")),
                    "author": _jsonld_author(item.get("author")),
                    "published_at": parse_date(item.get("datePublished")),
                }
    return {}


def _jsonld_items(data: object) -> list[dict]:
    if isinstance(data, list):
        return [x for item in data for x in _jsonld_items(item)]
    if isinstance(data, dict):
        return [data, *_jsonld_items(data.get("@graph", []))]
    return []


def _jsonld_author(value: object) -> str | None:
    if isinstance(value, list):
        names = [name for item in value if (name := _jsonld_author(item))]
        return ", ".join(names) or None
    if isinstance(value, dict):
        return str(value.get("name") or "") or None
    return str(value) if isinstance(value, str) and value else None


def extract_with_hints(
    html: str, url: str | None, content_selector: str | None, title_selector: str | None, use_jsonld: bool
) -> ExtractedPage:
    """:func:`extract_article` steered by a source's hints (selectors, JSON-LD)."""
    page: ExtractedPage | None = None
    if content_selector:
        selected = select_html(html, content_selector)
        if selected:
            page = extract_article(selected, url)
            page.extractor += f"+selector({content_selector})"
    if page is None or not page.text:
        page = extract_article(html, url)
    if title_selector:
        titled = select_html(html, title_selector)
        if titled:
            page.title = _clean_title(visible_text(titled)) or page.title
    if page.title is None or page.title == _clean_title(None):
        page.title = _title_tag(html)
    if use_jsonld:
        meta = jsonld_metadata(html)
        page.title = page.title or meta.get("title")  # type: ignore[assignment]
        page.author = meta.get("author") or page.author  # type: ignore[assignment]
        page.published_at = meta.get("published_at") or page.published_at  # type: ignore[assignment]
    return page
