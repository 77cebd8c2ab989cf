"""The pipeline in a real browser: paste an article → run the pipeline → see rules → approve → export."""

from __future__ import annotations

import re
import zipfile

import pytest
from tests.web.analyst import RULE_TITLE, respond
from tests.web.conftest import screenshot

from ctistudio.resources import demo_article
from ctistudio.testing.lmstudio_double import LMStudioDouble

pytestmark = pytest.mark.browser


@pytest.fixture
def lms():
    with LMStudioDouble() as double:
        yield double


def test_paste_run_review_approve_export(live_server, page, lms):
    lms.responder = respond
    lms.slow_down(2.0)  # the rank call is slow enough to be seen running
    server = live_server(**lms.env(), LLM_PROVIDER="lmstudio")
    page.goto(server.url + "/articles/new")
    page.locator("#paste-text").fill(demo_article())
    screenshot(page, "article-new")
    page.locator("#paste-submit").click()
    page.wait_for_url(re.compile(r"/articles/\d+$"))
    assert "Operation Paper Lantern" in page.locator("h1").inner_text()
    article_url = page.url
    page.locator("#run-pipeline").click()
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    page.locator("#run-live li[data-step=rank][data-status=running]").wait_for(timeout=30000)  # seen live
    page.locator("#run-status [data-status=succeeded]").wait_for(timeout=60000)  # the page polls until the end
    steps = page.locator("#steps li")
    assert steps.count() >= 4 and page.locator("#steps li[data-status=failed]").count() == 0
    screenshot(page, "run")
    page.get_by_role("link", name=RULE_TITLE).click()
    page.wait_for_url(re.compile(r"/queue/\d+$"))
    editor = page.locator("#rule-yaml")
    original = editor.input_value()
    editor.fill(original.replace("condition: selection", "condition: nothing_named_so"))
    page.locator("#validation [data-valid=false]").wait_for()
    editor.fill(original)
    page.locator("#validation [data-valid=true]").wait_for()
    screenshot(page, "rule-review")
    page.locator("#approve").click()
    page.wait_for_function("() => document.querySelector('#review-state').textContent === 'approved'")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export approved rules").click()
    path = download_info.value.path()
    with zipfile.ZipFile(path) as archive:
        assert any(RULE_TITLE in archive.read(name).decode() for name in archive.namelist())
    page.goto(server.url + "/queue?state=approved")
    assert RULE_TITLE in page.locator("#queue").inner_text()
    screenshot(page, "queue-approved")
    page.goto(article_url)
    assert page.locator("#pipeline h3").first.inner_text().startswith("Rank 8/10")
    assert page.locator("#article-text mark.evidence").count() >= 3  # hunt score, rank and observable evidence
    assert RULE_TITLE in page.locator("#pipeline .rules").inner_text()
    screenshot(page, "article-after-run")
    page.goto(server.url + "/")
    assert page.locator("a[href^='/runs/']").count() >= 1  # the run is among the recent ones
    screenshot(page, "dashboard-after-run")
    assert page.events["page_errors"] == []
