"""Chat in a real browser: a question gets a streamed answer with a citation linked to the article."""

from __future__ import annotations

import re

import pytest
from tests.web.conftest import screenshot
from tests.web.test_chat_api import ANSWER, answer_from_library

from ctistudio.resources import demo_article
from ctistudio.testing.lmstudio_double import LMStudioDouble

pytestmark = pytest.mark.browser


def test_chat_question_gets_a_streamed_answer_with_a_citation(live_server, page):
    with LMStudioDouble(token_latency=0.05) as lms:
        lms.responder = answer_from_library
        server = live_server(**lms.env(), LLM_PROVIDER="lmstudio", CTISTUDIO_EMBEDDING_PROVIDER="lmstudio")
        page.goto(server.url + "/articles/new")
        page.locator("#paste-text").fill(demo_article())
        page.locator("#paste-submit").click()
        page.wait_for_url(re.compile(r"/articles/\d+$"))
        article_url = page.url
        page.goto(server.url + "/chat")
        page.select_option("#chat-provider", "lmstudio")
        page.locator("#chat-question").fill("Which process spawned mshta.exe?")
        page.locator("#chat-send").click()
        turn = page.locator(".msg.assistant").last
        page.locator(".msg.assistant[data-done=true]").wait_for(timeout=30000)
        assert turn.locator(".answer").inner_text() == ANSWER
        # streamed: the answer came as many token events, the first well before the end
        assert int(turn.get_attribute("data-tokens")) >= 5
        first, done = float(turn.get_attribute("data-first-token-at")), float(turn.get_attribute("data-done-at"))
        assert done - first > 300  # ms: ~17 tokens, 50 ms apart
        marker = turn.locator("a.cite")
        assert marker.inner_text() == "[1]" and marker.get_attribute("href") == "#cite-1"
        citation = turn.locator("#cite-1 a.citation")
        assert citation.inner_text().startswith("Operation Paper Lantern")
        assert citation.get_attribute("href") == article_url.removeprefix(server.url)
        assert "lmstudio/" in turn.locator(".meta").inner_text()
        screenshot(page, "chat-streamed-answer")
        assert page.events["page_errors"] == []
