"""Manual input: uploaded files (HTML, PDF, text, Markdown) and pasted text → clean article text.

Every refusal is a :class:`~ctistudio.ingest.errors.Refused` whose message says what was wrong with the
input (too big, binary, encrypted PDF, no text …) and how to get it in.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import PurePath
from typing import Any

import yaml
from pypdf import PdfReader
from pypdf.errors import PdfReadError, PyPdfError

from ctistudio.ingest.charset import decode_text
from ctistudio.ingest.errors import Refused
from ctistudio.ingest.html_text import extract_article, parse_date, tidy_text
from ctistudio.safe_yaml import FRONT_MATTER_LIMITS, YamlRefused, load_yaml

log = logging.getLogger(__name__)

MAX_PDF_PAGES = 500
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdown"}
TEXT_SUFFIXES = {".txt", ".text", ".log", ".csv", ""}
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.DOTALL)
_HEADING = re.compile(r"^#{1,3}\s+(.+)$", re.MULTILINE)


@dataclass
class Document:
    """Text pulled out of an upload or paste, with what metadata it carried."""

    text: str
    kind: str  # html | pdf | markdown | text
    title: str | None = None
    author: str | None = None
    published_at: datetime | None = None
    url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def content_format(self) -> str:
        return "markdown" if self.kind in ("markdown", "html") else "text"


def _looks_binary(sample: bytes) -> bool:
    if b"\x00" in sample:
        return True
    control = sum(1 for byte in sample if byte < 32 and byte not in (9, 10, 12, 13, 27))
    return bool(sample) and control / len(sample) > 0.05


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return parse_date(value.isoformat())
    if isinstance(value, date):
        return parse_date(value.isoformat())
    return parse_date(str(value)) if value else None


def markdown_document(text: str, *, kind: str = "markdown") -> Document:
    """Markdown (or plain text) with an optional YAML front matter (title, author, published/date, url)."""
    meta: dict[str, Any] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        try:
            loaded = load_yaml(match.group(1), limits=FRONT_MATTER_LIMITS, what="the front matter")
        except YamlRefused as exc:
            raise Refused(exc.message, fix=exc.fix) from exc
        except yaml.YAMLError:
            loaded = None
        if isinstance(loaded, dict):
            meta = loaded
            text = text[match.end() :]
    text = tidy_text(text)
    title = str(meta.get("title") or "").strip() or None
    if title is None:
        heading = _HEADING.search(text[:5000])
        title = heading.group(1).strip() if heading else None
    url = meta.get("url") or meta.get("source_url")
    return Document(
        text=text,
        kind=kind,
        title=title,
        author=str(meta["author"]) if meta.get("author") else None,
        published_at=_as_datetime(meta.get("published") or meta.get("date")),
        url=str(url) if url else None,
    )


def pdf_document(data: bytes, name: str) -> Document:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise Refused(f"{name}: the PDF is password-protected", fix="Upload a copy without a password.")
        pages = reader.pages
        if len(pages) > MAX_PDF_PAGES:
            raise Refused(f"{name}: {len(pages)} pages is over the {MAX_PDF_PAGES}-page limit", fix="Split the PDF.")
        text = tidy_text("\n\n".join(page.extract_text() or "" for page in pages))
        info = reader.metadata
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise Refused(
            f"{name}: not a readable PDF ({exc.__class__.__name__}: {exc})",
            fix="Check that the file is a complete, undamaged PDF.",
        ) from exc
    if not text.strip():
        raise Refused(
            f"{name}: the PDF has no extractable text (a scanned image?)",
            fix="Run OCR on it first, or paste the text.",
        )
    title = (info.title if info else None) or None
    author = (info.author if info else None) or None
    created = info.creation_date if info else None
    return Document(text=text, kind="pdf", title=title, author=author, published_at=_as_datetime(created))


def document_from_bytes(data: bytes, filename: str | None, *, max_bytes: int) -> Document:
    """Turn an uploaded file into a :class:`Document`, or refuse it with the reason."""
    name = filename or "upload"
    if len(data) > max_bytes:
        raise Refused(
            f"{name}: {len(data):,} bytes is over the upload limit of {max_bytes:,} bytes",
            fix="Upload a smaller file or raise CTISTUDIO_MAX_UPLOAD_BYTES.",
        )
    if not data.strip():
        raise Refused(f"{name}: the file is empty", fix="Choose the file that holds the article.")
    suffix = PurePath(name).suffix.lower()
    if data.lstrip()[:5] == b"%PDF-":
        document = pdf_document(data, name)
    elif _looks_binary(data[:8192]):
        raise Refused(
            f"{name}: binary content that is not a PDF ({suffix or 'no extension'})",
            fix="Upload HTML, PDF, Markdown or plain text (save office documents as PDF first).",
        )
    else:
        text = decode_text(data)
        head = text[:1024].lower()
        if suffix in HTML_SUFFIXES or "<html" in head or "<!doctype html" in head:
            page = extract_article(text)
            document = Document(
                text=page.text, kind="html", title=page.title, author=page.author, published_at=page.published_at
            )
        elif suffix in MARKDOWN_SUFFIXES or _FRONT_MATTER.match(text):
            document = markdown_document(text)
        else:
            document = markdown_document(text, kind="text")
    if not document.text.strip():
        raise Refused(f"{name}: no text could be extracted", fix="Check that the file holds the article text.")
    document.extra["filename"] = name
    document.title = document.title or PurePath(name).stem or None
    return document
