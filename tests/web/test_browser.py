"""The app in a real browser (Debian's chromium through Playwright): Settings, XSS, every page."""

from __future__ import annotations

import os

import pytest
from tests.web.conftest import screenshot

from ctistudio.testing.lmstudio_double import LMStudioDouble
from ctistudio.web.app import NAV

pytestmark = pytest.mark.browser

XSS_TITLE = '<img src=x onerror="window.__xss_title=1">Loader report'
XSS_BODY = (
    "The actor ran <script>window.__xss_body=1</script> rundll32.exe C:\\Windows\\System32\\comsvcs.dll "
    'MiniDump 624 C:\\temp\\l.dmp full and <svg onload="window.__xss_svg=1"></svg> then '
    '<a href="javascript:window.__xss_link=1">click</a>.'
)


@pytest.fixture
def lms():
    with LMStudioDouble() as double:
        yield double


def test_settings_test_connection_turns_green_and_shows_loaded_context(live_server, page, lms):
    server = live_server(**lms.env())
    page.goto(server.url + "/settings")
    rank = page.locator("select[name=lmstudio_model_rank]")
    page.wait_for_function(
        "() => [...document.querySelectorAll('select[name=lmstudio_model_rank] option')]"
        ".some(o => o.textContent.includes('loaded · 16,384 ctx'))"
    )
    assert "qwen/qwen3-4b-2507 — loaded · 16,384 ctx" in rank.inner_text()
    page.get_by_role("button", name="Test Connection (lmstudio)").click()
    report = page.locator("#report-lmstudio[data-ok=true]")
    report.wait_for(timeout=15000)
    text = report.inner_text()
    assert "Connected" in text and "16,384" in text
    badge = report.locator(".badge.ok").first
    assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(227, 244, 232)"  # green
    assert page.events["page_errors"] == []
    screenshot(page, "settings-test-connection")


def test_test_connection_failure_shows_the_fix(live_server, page):
    server = live_server()  # LM Studio points at a port nobody listens on
    page.goto(server.url + "/settings")
    page.get_by_role("button", name="Test Connection (lmstudio)").click()
    report = page.locator("#report-lmstudio[data-ok=false]")
    report.wait_for(timeout=15000)
    assert "Failed" in report.inner_text() and "Fix:" in report.inner_text()


def test_stored_script_payload_does_not_execute(live_server, page):
    from ctistudio.store.articles import NewArticle, add_article

    server = live_server()
    with server.app.state.ctx.store.session() as session:
        article = add_article(
            session,
            NewArticle(
                title=XSS_TITLE,
                content=XSS_BODY,
                content_hash=os.urandom(16).hex(),
                simhash=int.from_bytes(os.urandom(8), "big"),
                hunt_score=40,
                hunt_evidence=[{"signal": "lolbin", "match": "rundll32.exe", "points": 20}],
            ),
        )
        article_id = article.id
    for path in ("/articles", "/articles?search=loader", f"/articles/{article_id}"):
        page.goto(server.url + path)
        page.wait_for_load_state("networkidle")
        executed = page.evaluate("() => [window.__xss_title, window.__xss_body, window.__xss_svg, window.__xss_link]")
        assert executed == [None, None, None, None], path
    assert page.locator("#article-text").inner_text().startswith("The actor ran <script>window.__xss_body=1</script>")
    assert page.locator("h1").inner_text() == XSS_TITLE  # shown as text, not as an image tag
    assert page.locator("#article-text img, #article-text svg, #article-text script, #article-text a").count() == 0
    assert page.locator("#article-text mark.evidence").first.inner_text() == "rundll32.exe"
    assert page.events["dialogs"] == []
    screenshot(page, "article-xss-payload")


def test_every_page_renders_and_is_captured(live_server, page, lms):
    server = live_server(**lms.env())
    for href, label in NAV:
        response = page.goto(server.url + href)
        assert response.status == 200, href
        assert page.locator("h1").first.is_visible()
        assert page.events["page_errors"] == [], href
        screenshot(page, "page-" + (label.lower().replace(" ", "-")))


def test_api_docs_render_offline_under_the_csp(live_server, page):
    server = live_server()
    response = page.goto(server.url + "/docs")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.locator(".opblock").first.wait_for(timeout=15000)  # Swagger UI rendered the operations
    assert page.locator(".opblock").count() > 20
    assert page.get_by_text("/api/test-lmstudio").count() >= 1
    assert page.events["page_errors"] == []
    screenshot(page, "api-docs")
