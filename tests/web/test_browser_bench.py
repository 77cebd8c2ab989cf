"""The Benchmarks pages in a real browser: a quick benchmark started from the page, its table and charts."""

from __future__ import annotations

import re

import pytest
from tests.web.conftest import screenshot

from ctistudio.testing.lmstudio_double import LMStudioDouble

pytestmark = pytest.mark.browser


def test_run_a_quick_benchmark_from_the_page(live_server, page):
    with LMStudioDouble() as lms:
        server = live_server(**lms.env(), CTISTUDIO_EMBEDDED="false", LLM_PROVIDER="lmstudio")
        page.goto(server.url + "/benchmarks")
        page.locator("#run-benchmark").click()
        page.get_by_role("link", name=re.compile(r"^run \d{8}_\d{6}")).wait_for(timeout=120000)
        page.get_by_role("link", name=re.compile(r"^run \d{8}_\d{6}")).click()
        page.wait_for_url(re.compile(r"/benchmarks/\d{8}_\d{6}"))
        summary = page.locator("#bench-summary").inner_text()
        assert "lmstudio" in summary and "rank" in summary
        charts = page.locator("img.chart")
        assert charts.count() >= 1
        assert all(charts.nth(i).evaluate("img => img.naturalWidth > 0") for i in range(charts.count()))
        screenshot(page, "benchmark-run")
        page.goto(server.url + "/benchmarks")
        assert page.locator("#bench-runs tbody tr").count() == 1
        screenshot(page, "benchmarks-history")
