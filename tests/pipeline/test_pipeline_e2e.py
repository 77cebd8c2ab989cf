"""The whole pipeline, end to end, through the LM Studio double scripted with realistic answers."""

from __future__ import annotations

import json

import pytest
from analyst_script import respond, sigma_requests

from ctistudio.config import load_settings
from ctistudio.llm import Gateway
from ctistudio.pipeline.novelty import load_novelty_judge
from ctistudio.pipeline.service import PipelineService
from ctistudio.store import Store
from ctistudio.store.rules import run_rules
from ctistudio.store.runs import run_observables
from ctistudio.testing.lmstudio_double import LMStudioDouble


@pytest.fixture
def analyst(lmstudio_double: LMStudioDouble, monkeypatch: pytest.MonkeyPatch) -> LMStudioDouble:
    lmstudio_double.responder = respond
    monkeypatch.setenv("LLM_PROVIDER", "lmstudio")
    return lmstudio_double


async def run_demo(store: Store, article_id: int, **kwargs) -> tuple[PipelineService, int, str]:
    settings = load_settings()
    gateway = Gateway(settings)
    service = PipelineService(settings, store, gateway, **kwargs)
    run_id = await service.start_run(article_id)
    status = await service.wait(run_id)
    await gateway.aclose()
    return service, run_id, status


async def test_demo_article_end_to_end(analyst: LMStudioDouble, store: Store, demo_article_id: int, sigmahq_index):
    service, run_id, status = await run_demo(store, demo_article_id, novelty=load_novelty_judge(load_settings()))
    view = service.run_view(run_id, with_config=True)
    assert status == "succeeded", view.error
    steps = {s.name: s for s in view.steps}
    assert [s.status for s in view.steps] == ["succeeded"] * 5

    # rank: evidence cited by sentence number and filled in from the article; the score gates nothing
    rank = steps["rank"].output
    assert (rank["score"], rank["band"], rank["passed"], rank["origin"]) == (8, "high", True, "model")
    assert rank["dropped_evidence"] == 0 and rank["evidence"][0].startswith("powershell.exe -nop -w hidden")
    assert len(rank["evidence"]) == 2

    # extract: malformed JSON repaired by the gateway, invented items dropped and counted, never below the floor
    extract = steps["extract"].output
    assert extract["dropped_by_reason"] == {"value_not_in_article": 2}
    assert extract["modes"]["cmdline"] == "model" and extract["counts"]["cmdline"] == 18  # 14 + 4 run by cmd /c
    assert (
        extract["by_origin"]["model"] == 11
    )  # 2 command lines, 1 pair, 2 + 1 registry, service, task, 2 network, 1 query
    assert sum(extract["by_origin"].values()) == sum(extract["counts"].values())
    repairs = [r for r in analyst.requests_to("/v1/chat/completions") if "could not be used" in json.dumps(r.body)]
    assert len([r for r in repairs if "Task: " in json.dumps(r.body)]) == 1  # (the others: sigma's {} below)
    with store.session() as session:
        stored = {(o.kind, o.value) for o in run_observables(session, run_id)}
    assert ("cmdline", "cmd.exe /c whoami /all") in stored
    assert ("lineage", "ONENOTE.EXE → mshta.exe") in stored
    assert not any("vssadmin" in v or "winword" in v for _, v in stored)
    assert ("hash", "") not in stored

    # sigma: the model's choices rendered by code; the rule on a program alone not taken; floor rules for
    # the groups that answered {} (proxy, network connections), and the run says so
    with store.session() as session:
        rules = {r.title: r for r in run_rules(session, run_id)}
    assert set(rules) >= {
        "OneNote Spawning Mshta",
        "Lantern Loader Export Called Through Rundll32",
        "Lantern Loader Run Key Persistence",
        "Lantern Service Installed",
        "Lantern C2 Domain Resolved",
    }, steps["sigma"].output["group_errors"]
    assert "Rundll32 Executed" not in rules, steps["sigma"].output["group_errors"]
    loader = rules["Lantern Loader Export Called Through Rundll32"]
    assert "CommandLine|contains|all:\n    - lanternsvc.dll\n    - DllRegister" in loader.yaml
    assert "attack.defense-evasion" in loader.yaml  # the technique's tactic, added by code
    assert all(r.validation_status == "valid" for r in rules.values())
    assert all(r.rule_uuid and r.yaml.count(r.rule_uuid) == 1 for r in rules.values())
    assert "https://example.org/ctistudio/demo/operation-paper-lantern" in loader.yaml
    floor_groups = {r.extra["group"] for r in rules.values() if r.extra["origin"] == "floor"}
    assert floor_groups == {"proxy", "windows/network_connection"}
    assert steps["sigma"].output["by_origin"] == {"model": 6, "floor": len(rules) - 6}
    assert any(e.startswith("proxy: no usable model answer") for e in steps["sigma"].output["group_errors"])
    assert len(sigma_requests(analyst)) == 6 + 2  # one per group, and the gateway's repair of the two {}
    assert view.status == "succeeded" and any("built by the deterministic floor" in w for w in view.warnings)

    # novelty, per rule: the rewrite of a SigmaHQ rule is a duplicate, its neighbour in the same answer is novel
    verdicts = {r.title: r.verdict for r in view.rules}
    assert verdicts["WDigest UseLogonCredential Turned On"] == "duplicate"
    assert verdicts["Lantern Loader Run Key Persistence"] == "novel"
    assert verdicts["Lantern Loader Export Called Through Rundll32"] == "novel"
    duplicate = next(r for r in view.rules if r.verdict == "duplicate")
    assert duplicate.similar[0]["title"] == "Wdigest Enable UseLogonCredential" and duplicate.similar[0]["score"] == 1.0
    queued = {r.title for r in service.queue.list()}
    assert "Lantern Loader Run Key Persistence" in queued and "WDigest UseLogonCredential Turned On" not in queued
    assert steps["novelty"].output["queued"] == len(queued) == len(view.rules) - 1
    assert steps["novelty"].output["index"]["rules"] > 3000

    # accounting: prompt versions, config snapshot (no secrets), per-step model, tokens and timings
    assert set(view.prompt_versions) >= {"rank", "extract_cmdline", "sigma_generate"}
    assert view.config_snapshot["rank_threshold"] == 6.0 and view.config_snapshot["lmstudio_api_key"] is False
    for name in ("rank", "extract", "sigma"):
        assert steps[name].model == "qwen/qwen3-4b-2507" and steps[name].provider == "lmstudio"
        assert steps[name].prompt_tokens > 0 and steps[name].completion_tokens > 0
        assert steps[name].duration_ms > 0
    assert view.provider == "lmstudio" and view.model == "qwen/qwen3-4b-2507"


async def test_rank_below_threshold_gates_and_force_resumes(
    analyst: LMStudioDouble, store: Store, demo_article_id: int
):
    def low_score(call):
        if "SIGMA HUNTABILITY" in call.system:
            return json.dumps({"score": 3, "reasons": ["narrative without technical detail"], "evidence": []})
        return respond(call)

    analyst.responder = low_score
    service, run_id, status = await run_demo(store, demo_article_id)
    assert status == "gated"
    view = service.run_view(run_id)
    assert [s.status for s in view.steps] == ["succeeded", "succeeded", "pending", "pending", "pending"]
    assert not view.rules and view.finished_at is not None
    calls_before = len(analyst.requests_to("/v1/chat/completions"))

    gateway = Gateway(load_settings())
    forced = PipelineService(load_settings(), store, gateway)
    await forced.resume_run(run_id, force=True)
    assert await forced.wait(run_id) == "succeeded"
    await gateway.aclose()
    view = forced.run_view(run_id)
    rank = next(s for s in view.steps if s.name == "rank")
    assert rank.output["score"] == 3 and rank.output["forced"] is True
    assert view.rules and all(r.verdict is None for r in view.rules)  # no SigmaHQ index: queued unchecked
    novelty = next(s for s in view.steps if s.name == "novelty")
    assert novelty.status == "skipped" and "sigma index" in novelty.output["fix"]
    assert {r.id for r in forced.queue.list()} == {r.id for r in view.rules if r.valid}
    assert len(analyst.requests_to("/v1/chat/completions")) > calls_before
