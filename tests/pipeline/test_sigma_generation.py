"""Sigma generation: the model chooses from enums, code renders; the floor when the model's answer is unusable.

The LM Studio double is a real HTTP server; the gateway checks every answer against the schema the request
carried, as a grammar-enforcing server would guarantee, so an answer that names a value the schema does not
offer fails exactly as it would in production.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from ctistudio.config import load_settings
from ctistudio.llm import Gateway
from ctistudio.pipeline.extract import extract_observables
from ctistudio.pipeline.service import PipelineService
from ctistudio.pipeline.sigma_gen import RuleContext, generate_rules, group_observables
from ctistudio.resources import demo_article
from ctistudio.sigma import validate_rule
from ctistudio.store import Store
from ctistudio.store.rules import run_rules
from ctistudio.store.runs import run_observables
from ctistudio.testing.http_double import ChatCall
from ctistudio.testing.lmstudio_double import LMStudioDouble
from ctistudio.testing.sigma_answers import lsass_rule, offers, rule, selection, sigma_answer


def _group_of(call: ChatCall) -> str:
    """The log source a sigma request is for (its user message starts with it)."""
    return call.last_user.splitlines()[0].removeprefix("Log source: ") if "Log source:" in call.last_user else ""


def _is_sigma(call: ChatCall) -> bool:
    return (call.schema or {}).get("properties", {}).get("rules") is not None


async def _floor_observables():
    outcome = await extract_observables(None, demo_article())
    return outcome.observables


CONTEXT = RuleContext("test-run", "Operation Paper Lantern", "https://example.org/paper-lantern", "2026-12-07")


@pytest.fixture
def gateway(lmstudio_double: LMStudioDouble, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LLM_PROVIDER", "lmstudio")
    return Gateway(load_settings())


async def test_the_models_choices_are_rendered_and_other_groups_get_the_floor(lmstudio_double, gateway):
    calls: list[ChatCall] = []

    def respond(call: ChatCall) -> str | None:
        calls.append(call)
        if _is_sigma(call) and "process_creation, product: windows" in _group_of(call):
            return sigma_answer(lsass_rule(call.last_user))
        return "{}"  # every other group: an unusable answer

    lmstudio_double.responder = respond
    observables = await _floor_observables()
    context = RuleContext(**{**CONTEXT.__dict__, "article": demo_article()})
    async with gateway:
        rules, notes, usage = await generate_rules(gateway, observables, context)

    process = [r for r in rules if r.group == "windows/process_creation"]
    assert [r.origin for r in process] == ["model"]
    rule = yaml.safe_load(process[0].yaml)
    assert rule["detection"]["selection"] == {
        "Image|endswith": "\\rundll32.exe",
        "CommandLine|contains|all": ["comsvcs.dll", "MiniDump"],
    }
    assert rule["tags"] == ["attack.credential-access", "attack.t1003.001"]  # the technique brought its tactic
    assert rule["logsource"] == {"category": "process_creation", "product": "windows"}
    assert rule["references"] == ["https://example.org/paper-lantern"] and rule["status"] == "experimental"
    assert all(validate_rule(r.yaml).valid and r.valid for r in rules)

    # the request constrained the answer: fields of the log source, the values the observables offer
    request = next(c for c in calls if _is_sigma(c) and "process_creation" in _group_of(c))
    assert (request.response_format or {})["type"] == "json_schema"
    text = json.dumps(request.schema)
    assert '"const": "CommandLine"' in text and '"const": "TargetObject"' not in text
    assert '"MiniDump"' in text and '"comsvcs.dll"' in text

    # the groups that answered {} got floor rules, and the step says why
    others = {r.group for r in rules if r.origin == "floor"}
    expected = {g.key for g in group_observables(observables)} - {"windows/process_creation"}
    assert others == expected
    assert len(notes) == len(expected) and all("rules built by the floor" in n for n in notes)
    assert usage.failed_calls == len(expected)


async def test_a_rule_on_a_program_alone_is_not_taken_and_the_floor_is(lmstudio_double, gateway):
    def too_broad(call: ChatCall) -> str | None:
        if not _is_sigma(call):
            return None
        bare = selection(call.last_user, ("Image", "endswith", ["\\rundll32.exe"]))
        return sigma_answer(rule("Rundll32 Executed", ["attack.t1218.011"], [bare]))

    lmstudio_double.responder = too_broad
    observables = [o for o in await _floor_observables() if o.kind == "cmdline"]
    async with gateway:
        rules, notes, _ = await generate_rules(gateway, observables, CONTEXT)
    assert rules and all(r.origin == "floor" and r.valid for r in rules)
    assert notes == [
        "windows/process_creation: the model's answer matched nothing specific enough (a program alone, or "
        "nothing); rules built by the floor"
    ]
    for r in rules:  # every floor rule pairs the program with its arguments
        detection = yaml.safe_load(r.yaml)["detection"]["selection"]
        assert any(key.startswith("CommandLine") for key in detection), detection


async def test_a_command_line_selection_without_its_program_gets_the_programs_image(lmstudio_double, gateway):
    # the 0.5B model matched `COIm.jpg,init`-like arguments without the program that ran them
    def arguments_only(call: ChatCall) -> str | None:
        if not _is_sigma(call):
            return None
        chosen = selection(call.last_user, ("CommandLine", "contains|all", ["comsvcs.dll", "MiniDump"]))
        return sigma_answer(rule("Comsvcs MiniDump", ["attack.t1003.001"], [chosen]))

    lmstudio_double.responder = arguments_only
    observables = [o for o in await _floor_observables() if o.kind == "cmdline"]
    async with gateway:
        rules, _, _ = await generate_rules(gateway, observables, CONTEXT)
    [rule_] = [r for r in rules if r.origin == "model"]
    assert yaml.safe_load(rule_.yaml)["detection"]["selection"] == {
        "Image|endswith": "\\rundll32.exe",
        "CommandLine|contains|all": ["comsvcs.dll", "MiniDump"],
    }


@pytest.mark.parametrize(
    "items",
    [
        # a value no observable offers
        [{"field": "CommandLine", "modifier": "contains", "values": ["mimikatz.exe"]}],
        # values of two observables in one selection: the Run key's path with the WDigest value's data
        [
            {"field": "TargetObject", "modifier": "endswith", "values": ["\\CurrentVersion\\Run\\LanternUpdate"]},
            {"field": "Details", "modifier": "equals", "values": ["DWORD (0x00000001)"]},
        ],
    ],
    ids=["invented value", "values of two observables"],
)
async def test_an_answer_the_schema_does_not_allow_is_refused_not_rendered(lmstudio_double, gateway, items):
    def answer(call: ChatCall) -> str | None:
        if not _is_sigma(call):
            return None
        numbers = sorted(offers(call.last_user))
        return sigma_answer(rule("Invented", [], [{"observable": n, "items": items} for n in numbers[:1]]))

    lmstudio_double.responder = answer
    kinds = ("cmdline",) if items[0]["field"] == "CommandLine" else ("registry",)
    observables = [o for o in await _floor_observables() if o.kind in kinds]
    async with gateway:
        rules, notes, _ = await generate_rules(gateway, observables, CONTEXT)
    assert "mimikatz" not in "".join(r.yaml for r in rules) and "Invented" not in {r.title for r in rules}
    assert rules and {r.origin for r in rules} == {"floor"}
    assert "no usable model answer" in notes[0]


def test_without_a_model_every_group_gets_valid_floor_rules():
    import asyncio

    async def go() -> tuple[list[Any], list[str], list[str]]:
        observables = await _floor_observables()
        rules, notes, _ = await generate_rules(None, observables, CONTEXT)
        return rules, notes, [g.key for g in group_observables(observables)]

    rules, notes, groups = asyncio.run(go())
    assert notes == []  # no model was asked: nothing to explain
    assert {r.group for r in rules} == set(groups)
    assert all(r.valid and r.origin == "floor" for r in rules)
    registry = [yaml.safe_load(r.yaml)["detection"]["selection"] for r in rules if r.group == "windows/registry_set"]
    # a key without its value name is matched as a part of TargetObject, never as its end
    assert {"TargetObject|contains": "\\SYSTEM\\CurrentControlSet\\Services\\LanternSvc\\Parameters"} in registry
    # a value written with reg add: the key and value name as the end of TargetObject
    run_key = next(s for s in registry if "Run" in str(s.get("TargetObject|endswith", "")))
    assert run_key["TargetObject|endswith"].endswith("\\CurrentVersion\\Run\\LanternUpdate")


async def test_a_server_that_answers_every_structured_request_with_an_empty_object(
    lmstudio_double: LMStudioDouble, monkeypatch: pytest.MonkeyPatch, store: Store, demo_article_id: int
):
    """A broken or tiny model: the run still ends with valid floor rules for every group and says so."""
    lmstudio_double.responder = lambda call: "{}"
    monkeypatch.setenv("LLM_PROVIDER", "lmstudio")
    settings = load_settings()
    async with Gateway(settings) as gateway:
        service = PipelineService(settings, store, gateway)
        run_id = await service.start_run(demo_article_id, force=True)
        status = await service.wait(run_id)
        view = service.run_view(run_id)
    assert status == "succeeded", view.error
    steps = {s.name: s.output for s in view.steps}
    assert steps["rank"]["origin"] == "hunt_score"
    with store.session() as session:
        observables = run_observables(session, run_id)
        rules = run_rules(session, run_id)
    assert {o.kind for o in observables} >= {"cmdline", "registry", "service", "scheduled_task", "network"}
    stored = await _floor_observables()
    groups = {g.key for g in group_observables(stored)}
    assert {r.extra["group"] for r in rules} == groups
    assert rules and all(r.validation_status == "valid" and r.extra["origin"] == "floor" for r in rules)
    assert any(w.startswith("rank:") for w in view.warnings)
    assert any(w.startswith("sigma: all rules built by the deterministic floor") for w in view.warnings)
    assert view.rules and all(r.origin == "floor" for r in view.rules)


def test_a_deleted_registry_key_gets_a_registry_delete_rule():
    import asyncio

    article = (
        'The actor cleared the RDP history:\nreg delete "HKCU\\Software\\Microsoft\\Terminal Server Client\\Default" /f'
    )
    outcome = asyncio.run(extract_observables(None, article))
    rules, _, _ = asyncio.run(generate_rules(None, outcome.observables, CONTEXT))
    deletion = [r for r in rules if r.group == "windows/registry_delete"]
    assert deletion and all(r.valid for r in deletion)
    rule = yaml.safe_load(deletion[0].yaml)
    assert rule["logsource"] == {"category": "registry_delete", "product": "windows"}
    assert rule["detection"]["selection"] == {
        "TargetObject|contains": "\\Software\\Microsoft\\Terminal Server Client\\Default"
    }
    assert not [r for r in rules if r.group == "windows/registry_set"]
