"""Benchmarks page and API: a quick benchmark against the LM Studio double, started from the web, read back."""

from __future__ import annotations

import asyncio

import pytest

from ctistudio.testing.lmstudio_double import LMStudioDouble


@pytest.fixture
def lms():
    with LMStudioDouble() as double:
        yield double


async def test_run_a_quick_benchmark_and_read_it_back(make_app, open_client, lms):
    api = await open_client(make_app(**lms.env(), CTISTUDIO_EMBEDDED="false"))
    assert (await api.get("/api/benchmarks")).json() == []
    started = await api.post("/api/benchmarks", json={"providers": ["lmstudio"], "tasks": ["chat"], "quick": True})
    assert started.status_code == 202 and started.json()["running"] is True
    again = await api.post("/api/benchmarks", json={"providers": ["lmstudio"], "tasks": ["chat"]})
    assert again.status_code == 400 and "running already" in again.json()["detail"]
    for _ in range(600):
        job = (await api.get("/api/benchmarks/current")).json()
        if not job["running"]:
            break
        await asyncio.sleep(0.1)
    assert job["error"] is None and job["run_id"]
    runs = (await api.get("/api/benchmarks")).json()
    assert [r["run_id"] for r in runs] == [job["run_id"]] and runs[0]["providers"] == ["lmstudio"]
    report = (await api.get(f"/api/benchmarks/{job['run_id']}")).json()
    assert report["results"][0]["tasks"][0]["task"] == "chat"
    page = await api.get(f"/benchmarks/{job['run_id']}")
    assert page.status_code == 200 and "lmstudio" in page.text
    for name in report["files"]["charts"].values():
        chart = await api.get(f"/benchmarks/{job['run_id']}/{name}")
        assert chart.status_code == 200 and chart.content.startswith(b"\x89PNG")
    assert (await api.get(f"/benchmarks/{job['run_id']}/..%2F..%2Fetc%2Fpasswd.png")).status_code in (404, 422)
    assert (await api.get("/api/benchmarks/19990101_000000")).status_code == 404
    api.cookies.clear()  # the pages above started a browser session (its unsafe requests need the CSRF token)
    bad = await api.post("/api/benchmarks", json={"providers": ["nosuch"], "tasks": ["chat"]})
    assert bad.status_code == 400
