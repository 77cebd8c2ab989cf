"""Providers API against the LM Studio test double: Test Connection, live models, loading."""

from __future__ import annotations

import pytest
from tests.web.conftest import browser_headers

from ctistudio.testing.lmstudio_double import LMStudioDouble


@pytest.fixture
def lms():
    with LMStudioDouble() as double:
        yield double


async def test_test_lmstudio_reports_ok_with_loaded_context(make_app, open_client, lms):
    client = await open_client(make_app(**lms.env()))
    response = await client.post("/api/test-lmstudio")
    assert response.status_code == 200
    report = response.json()
    assert report["ok"] is True
    names = [c["name"] for c in report["checks"]]
    assert "server reachable" in names and "completion" in names
    context = [c for c in report["checks"] if c["name"].endswith(": context")]
    assert context and all("16,384" in c["detail"] for c in context)


async def test_test_connection_failure_has_fixes(client):
    report = (await client.post("/api/providers/lmstudio/test")).json()
    assert report["ok"] is False
    reachable = report["checks"][0]
    assert reachable["name"] == "server reachable" and reachable["ok"] is False
    assert "LM Studio" in reachable["fix"]


async def test_unsaved_url_is_tested_without_saving(client, lms):
    headers = await browser_headers(client)
    body = {"settings": {"lmstudio_api_url": lms.url, "lmstudio_embedding_url": lms.url + "/embeddings"}}
    report = (await client.post("/api/providers/lmstudio/test", json=body, headers=headers)).json()
    assert report["ok"] is True
    saved = {s["name"]: s for s in (await client.get("/api/settings")).json()["settings"]}
    assert saved["lmstudio_api_url"]["value"] == "http://127.0.0.1:9/v1"  # unchanged


async def test_small_context_fails_with_the_load_command(make_app, open_client):
    with LMStudioDouble(models={"qwen/qwen3-4b-2507": 4096, "deepseek/deepseek-r1-0528-qwen3-8b": 16384}) as lms:
        client = await open_client(make_app(**lms.env()))
        report = (await client.post("/api/test-lmstudio")).json()
    assert report["ok"] is False
    bad = next(c for c in report["checks"] if "qwen/qwen3-4b-2507" in c["name"] and not c["ok"])
    assert "4,096" in bad["detail"] and "--context-length 16384" in bad["fix"]


async def test_models_and_load(make_app, open_client, lms):
    lms.add_model("ibm/granite-4-micro", None)
    client = await open_client(make_app(**lms.env()))
    models = {m["id"]: m for m in (await client.get("/api/providers/lmstudio/models")).json()}
    assert models["qwen/qwen3-4b-2507"]["loaded"] is True and models["qwen/qwen3-4b-2507"]["context_length"] == 16384
    assert models["ibm/granite-4-micro"]["loaded"] is False
    headers = await browser_headers(client)
    loaded = await client.post(
        "/api/providers/lmstudio/load", json={"model": "ibm/granite-4-micro", "context_length": 32768}, headers=headers
    )
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["context_length"] == 32768 and loaded.json()["reused"] is False
    models = {m["id"]: m for m in (await client.get("/api/providers/lmstudio/models")).json()}
    assert models["ibm/granite-4-micro"]["context_length"] == 32768
    too_small = await client.post(
        "/api/providers/lmstudio/load", json={"model": "x", "context_length": 10}, headers=headers
    )
    assert too_small.status_code == 422 and "context_length" in too_small.json()["detail"]


async def test_unknown_provider_is_a_clear_400(client):
    response = await client.post("/api/providers/nosuch/test")
    assert response.status_code == 400
    assert "unknown provider 'nosuch'" in response.json()["detail"]


async def test_providers_list_shows_chain_and_health(make_app, open_client, lms):
    client = await open_client(make_app(**lms.env()))
    data = (await client.get("/api/providers")).json()
    lmstudio = next(p for p in data["providers"] if p["name"] == "lmstudio")
    assert lmstudio["enabled"] is True and lmstudio["ok"] is True and lmstudio["url"] == lms.url
    assert "lmstudio" in data["chain"]
    assert next(p for p in data["providers"] if p["name"] == "ollama")["ok"] is None


async def test_a_value_saved_in_the_web_app_reaches_the_cli(client, lms):
    import asyncio
    import json
    import subprocess
    import sys

    headers = await browser_headers(client)
    body = {"lmstudio_api_url": lms.url, "lmstudio_embedding_url": lms.url + "/embeddings"}
    assert (await client.put("/api/settings", json=body, headers=headers)).status_code == 200
    result = await asyncio.to_thread(  # a new CLI process: env still says 127.0.0.1:9, the saved value wins
        subprocess.run,
        [sys.executable, "-m", "ctistudio.cli.main", "llm", "test", "--provider", "lmstudio", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(result.stdout)
    assert report["ok"] is True, result.stderr
    assert report["reports"][0]["url"] == lms.url
