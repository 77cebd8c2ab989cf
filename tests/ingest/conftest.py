"""Ingest fixtures: a real feed server on 127.0.0.1, a SQLite store and a service allowed to fetch loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ctistudio.config import Settings, load_settings
from ctistudio.ingest.service import IngestService
from ctistudio.store import Store
from ctistudio.testing.feed_server import FeedServer, article_page

LONG_PARAGRAPHS = [
    "The intrusion began with a phishing e-mail carrying a OneNote attachment that dropped an HTA file.",
    "The HTA launched PowerShell with an encoded command which downloaded a second stage over HTTPS.",
    "Persistence was set with a Run key and a scheduled task that executed rundll32 every thirty minutes.",
    "The operators dumped LSASS with comsvcs.dll and moved laterally with WMI before staging data for exfiltration.",
    "Defenders can hunt for mshta spawning PowerShell, for encoded commands and for new scheduled tasks.",
    "Network telemetry showed beaconing every sixty seconds to a domain registered two days before the attack.",
    "The ransomware binary was copied to each host through administrative shares and started as a service.",
    "Volume shadow copies were deleted with vssadmin before the encryption started on the file servers.",
]


def report_page(title: str, *, extra_paragraphs: list[str] | None = None, **options) -> str:
    """A realistic threat report page (long enough for the default minimum content length)."""
    paragraphs = [f"{title}: {p}" for p in LONG_PARAGRAPHS] + (extra_paragraphs or [])
    code = ["powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQA"]
    return article_page(title, paragraphs, code=code, author="Fixture Analyst", **options)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CTISTUDIO_ALLOW_PRIVATE_FETCH", "true")  # the feed server lives on loopback
    monkeypatch.setenv("CTISTUDIO_FETCH_HOST_INTERVAL", "0")
    monkeypatch.setenv("CTISTUDIO_FETCH_TIMEOUT", "5")
    return load_settings(env_file=None)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(url=f"sqlite:///{tmp_path / 'ingest.db'}") as opened:
        yield opened


@pytest.fixture
def service(store: Store, settings: Settings) -> IngestService:
    return IngestService(store, settings)


@pytest.fixture
def published() -> datetime:
    return datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(lines: list[str], *, title: str | None = None) -> bytes:
    """A small, valid one-page PDF with real text (Helvetica), written by hand."""
    stream = "BT /F1 11 Tf 72 740 Td 14 TL " + " ".join(f"({_pdf_escape(line)}) Tj T*" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    if title:
        objects.append(f"<< /Title ({_pdf_escape(title)}) >>")
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    info = f" /Info {len(objects)} 0 R" if title else ""
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


@pytest.fixture(name="make_pdf")
def make_pdf_fixture():
    return make_pdf


@pytest.fixture(name="report_page")
def report_page_fixture():
    return report_page
