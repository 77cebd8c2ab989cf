"""Articles in, rules out, through the API: paste → run (live steps) → queue → edit/approve → export/convert."""

from __future__ import annotations

import asyncio
import io
import zipfile

import pytest
from tests.web.analyst import RULE_TITLE, respond

from ctistudio.resources import demo_article
from ctistudio.testing.lmstudio_double import LMStudioDouble

FINAL = {"succeeded", "failed", "cancelled", "gated"}


@pytest.fixture
def analyst():
    with LMStudioDouble() as double:
        double.responder = respond
        yield double


@pytest.fixture
async def api(make_app, open_client, analyst):
    return await open_client(make_app(**analyst.env(), LLM_PROVIDER="lmstudio"))


async def wait_final(api, run_id: int, timeout: float = 60) -> dict:
    for _ in range(int(timeout * 10)):
        run = (await api.get(f"/api/runs/{run_id}")).json()
        if run["status"] in FINAL:
            return run
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish: {run}")


async def paste_demo(api) -> int:
    response = await api.post("/api/articles", json={"text": demo_article()})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "new" and body["hunt_score"] > 0
    return body["article_id"]


async def test_paste_run_review_export_convert(api):
    article_id = await paste_demo(api)
    again = (await api.post("/api/articles", json={"text": demo_article()})).json()
    assert again["status"] in ("exists", "duplicate") and (again["article_id"] or again["duplicate_of"]) == article_id

    started = await api.post(f"/api/articles/{article_id}/runs", json={"provider": "lmstudio"})
    assert started.status_code == 202
    run = await wait_final(api, started.json()["run_id"])
    assert run["status"] == "succeeded", run["error"]
    steps = {s["name"]: s for s in run["steps"]}
    assert steps["rank"]["output"]["score"] == 8 and steps["rank"]["model"]
    assert steps["rank"]["prompt_tokens"] > 0 and steps["rank"]["duration_ms"] > 0
    titles = [r["title"] for r in run["rules"]]
    assert RULE_TITLE in titles

    queued = (await api.get("/api/queue")).json()
    rule = next(r for r in queued if r["title"] == RULE_TITLE)
    detail = (await api.get(f"/api/queue/{rule['id']}")).json()
    assert "Libraries" in detail["rule"]["yaml"] and ".hta" in detail["rule"]["yaml"]
    approved = await api.post(f"/api/queue/{rule['id']}/approve", json={"note": "looks right"})
    assert approved.status_code == 200 and approved.json()["review_state"] == "approved"

    export = await api.get("/api/queue/export", params={"format": "zip"})
    assert export.status_code == 200 and export.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(export.content)) as archive:
        contents = [archive.read(name).decode() for name in archive.namelist()]
    assert any(RULE_TITLE in text for text in contents)
    splunk = (await api.get(f"/api/queue/{rule['id']}/convert", params={"target": "splunk"})).json()
    assert any("mshta.exe" in q and ".hta" in q for q in splunk["queries"])
    elastic = await api.get(f"/api/queue/{rule['id']}/convert", params={"target": "elastic"})
    assert elastic.status_code == 200 and elastic.json()["queries"]

    article_page = await api.get(f"/articles/{article_id}")
    assert "Rank 8/10" in article_page.text and RULE_TITLE in article_page.text
    assert '<mark class="evidence"' in article_page.text  # observables' evidence highlighted in the text


async def test_edit_is_validated_and_invalid_rules_cannot_be_approved(api):
    article_id = await paste_demo(api)
    run = await wait_final(api, (await api.post(f"/api/articles/{article_id}/runs", json={})).json()["run_id"])
    rule_id = next(r["id"] for r in run["rules"] if r["title"] == RULE_TITLE)
    stored = (await api.get(f"/api/queue/{rule_id}")).json()["rule"]["yaml"]
    assert (await api.post("/api/queue/validate", json={"yaml": stored})).json()["valid"] is True
    live = (await api.post("/api/queue/validate", json={"yaml": stored.replace("condition: selection", "")})).json()
    assert live["valid"] is False and live["issues"]
    broken = await api.put(f"/api/queue/{rule_id}", json={"yaml": stored.replace("|endswith", "|endswiths")})
    assert broken.status_code == 200 and broken.json()["valid"] is False
    refused = await api.post(f"/api/queue/{rule_id}/approve", json={})
    assert refused.status_code == 400 and "not valid" in refused.json()["detail"]
    fixed = await api.put(f"/api/queue/{rule_id}", json={"yaml": stored})
    assert fixed.json()["valid"] is True
    assert (await api.post(f"/api/queue/{rule_id}/approve", json={})).status_code == 200


async def test_cancel_then_resume(api, analyst):
    article_id = await paste_demo(api)
    analyst.slow_down(0.5, times=50)
    run_id = (await api.post(f"/api/articles/{article_id}/runs", json={})).json()["run_id"]
    for _ in range(100):
        if (await api.get(f"/api/runs/{run_id}")).json()["status"] == "running":
            break
        await asyncio.sleep(0.05)
    cancelled = await api.post(f"/api/runs/{run_id}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    live = await api.get(f"/runs/{run_id}/live")
    assert live.status_code == 286  # htmx stops polling a finished run
    api.cookies.clear()  # the page above started a browser session, whose unsafe requests need its CSRF token
    resumed = await api.post(f"/api/runs/{run_id}/resume", json={})
    assert resumed.status_code == 202
    assert (await wait_final(api, run_id))["status"] == "succeeded"


async def test_rule_page_shows_the_closest_sigmahq_rule_side_by_side(make_app, open_client, analyst, shared):
    from ctistudio.store.rules import set_rule_novelty

    rules_dir = shared / "sigmahq" / "rules"
    relative = "windows/registry/registry_set/registry_set_wdigest_enable_uselogoncredential.yml"
    app = make_app(**analyst.env(), LLM_PROVIDER="lmstudio", CTISTUDIO_SIGMA_RULES_DIR=str(rules_dir))
    api = await open_client(app)
    article_id = await paste_demo(api)
    run = await wait_final(api, (await api.post(f"/api/articles/{article_id}/runs", json={})).json()["run_id"])
    rule_id = run["rules"][0]["id"]
    similar = [
        {"rule_id": "x1", "title": "Wdigest Enable UseLogonCredential", "path": relative, "score": 0.72},
        {"rule_id": "x2", "title": "Outside the corpus", "path": "../../../../etc/passwd", "score": 0.5},
    ]
    with app.state.ctx.store.session() as session:
        set_rule_novelty(session, rule_id, "similar", similar)
    detail = (await api.get(f"/api/queue/{rule_id}")).json()
    assert detail["closest"]["yaml"] == (rules_dir / relative).read_text(encoding="utf-8")
    page = await api.get(f"/queue/{rule_id}")
    assert "Closest SigmaHQ rule" in page.text and "UseLogonCredential" in page.text
    assert "Outside the corpus" in page.text  # listed among the similar ones
    from ctistudio.web.queue_views import closest_rule

    escaped = closest_rule(app.state.ctx.settings(), similar[1])
    assert escaped.yaml is None and "is not in" in escaped.note  # nothing outside the rules folder is read


async def test_health_reports_database_providers_and_queue(api, analyst):
    health = await api.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["database"]["ok"] is True and body["queue"]["available"] is True
    lmstudio = next(p for p in body["providers"] if p["name"] == "lmstudio")
    assert lmstudio["ok"] is True
    assert body["status"] == "ok"


async def test_run_events_stream_every_step_then_done(api):
    article_id = await paste_demo(api)
    run_id = (await api.post(f"/api/articles/{article_id}/runs", json={})).json()["run_id"]
    async with api.stream("GET", f"/api/runs/{run_id}/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join([chunk async for chunk in response.aiter_text()])
    events = [block.split("\n")[0].removeprefix("event: ") for block in body.strip().split("\n\n")]
    assert events[0] == "run" and events[-1] == "done" and events.count("step") >= 5
    assert '"status": "succeeded"' in body.split("event: done")[1]
    assert (await api.get("/api/runs/999/events")).status_code == 404
