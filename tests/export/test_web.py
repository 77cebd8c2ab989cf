"""The exports, the Publish button and the Coverage page in the web app (real app, real SQLite, httpx)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ctistudio.export.stix import stix_problems
from ctistudio.web.app import create_app


@pytest.fixture
async def web(store) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(env_file=None)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client


async def test_exports_download_from_the_api_and_the_pages_link_them(web, approved_run: int, demo_article_id: int):
    stix = await web.get("/api/exports/stix", params={"run": approved_run})
    assert stix.status_code == 200 and stix.headers["content-type"].startswith("application/stix+json")
    assert 'attachment; filename="ctistudio-operation-paper-lantern' in stix.headers["content-disposition"]
    assert stix_problems(stix.text)[0] == []
    misp = await web.get("/api/exports/misp", params={"article": demo_article_id})
    assert misp.status_code == 200 and json.loads(misp.text)["info"] == "Operation Paper Lantern"
    csv = await web.get("/api/exports/csv", params={"run": approved_run})
    assert csv.status_code == 200 and "lantern-sync.workers.dev" in csv.text
    layer = await web.get("/api/exports/navigator", params={"approved": "true"})
    assert {t["techniqueID"] for t in layer.json()["techniques"]} == {"T1566.001", "T1218.005", "T1547.001"}

    missing = await web.get("/api/exports/stix", params={"article": 999})
    assert missing.status_code == 404 and missing.json()["fix"]
    unknown_format = await web.get("/api/exports/pdf", params={"run": approved_run})
    assert unknown_format.status_code == 422

    run_page = (await web.get(f"/runs/{approved_run}")).text
    assert f'href="/api/exports/stix?run={approved_run}"' in run_page
    article_page = (await web.get(f"/articles/{demo_article_id}")).text
    assert f'href="/api/exports/misp?article={demo_article_id}"' in article_page


async def test_coverage_page_shades_covered_techniques_and_lists_their_rules(web, approved_run: int):
    page = (await web.get("/coverage")).text
    assert 'data-tactic="initial-access"' in page and 'data-tactic="impact"' in page
    assert 'class="cell covered heat-4"' in page and 'data-technique="T1218"' in page
    assert 'href="/coverage?state=approved&amp;technique=T1218"' in page
    detail = (await web.get("/coverage", params={"technique": "T1218"})).text
    assert "OneNote Spawning Mshta" in detail and "Lantern Loader Run Key Persistence" not in detail
    data = (await web.get("/api/coverage")).json()
    persistence = next(c for c in data["columns"] if c["tactic"] == "persistence")
    assert next(cell for cell in persistence["cells"] if cell["technique_id"] == "T1547")["rules"] == 1
    assert data["rules"] == 2


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "rules.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "-b", "main", str(path)], check=True)
    return path


async def test_publish_from_the_queue_page_and_the_api(web, approved_run: int, repo: Path):
    page = (await web.get("/queue")).text
    assert 'hx-post="/queue/publish"' in page and 'id="publish-button"' in page
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)

    browser = {"X-CSRF-Token": csrf, "Origin": "http://127.0.0.1"}
    published = await web.post(
        "/queue/publish",
        data={"repo": str(repo), "branch": "", "pr": "", "project": ""},
        headers={"HX-Request": "true", **browser},
    )
    assert published.status_code == 200, published.text
    assert "pushed to" in published.text and "proc_creation_win_onenote_spawning_mshta.yml" in published.text

    again = await web.post("/api/queue/publish", json={"repo": str(repo)}, headers=browser)
    assert again.status_code == 200 and again.json()["commit"] is None and len(again.json()["skipped"]) == 2
    token_missing = await web.post(
        "/api/queue/publish", json={"repo": str(repo), "pr": "gitlab", "project": "a/b"}, headers=browser
    )
    assert token_missing.status_code == 400 and "CTISTUDIO_GITLAB_TOKEN" in token_missing.json()["detail"]
