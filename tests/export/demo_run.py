"""The demo article's run, as the export, publish and MCP tests use it.

The pipeline runs for real on the LM Studio double, answered by the double's defaults and forced past the
rank gate. Then the run's observables and rules are set to known items (network
indicators, a Run key) and two rules written for the demo article, with the extract and sigma steps' own
storage functions, so these tests do not depend on how the extractors and the generator phrase answers.
"""

from __future__ import annotations

import asyncio

from ctistudio.config import Settings
from ctistudio.llm import Gateway
from ctistudio.pipeline.service import PipelineService
from ctistudio.sigma import validate_rule
from ctistudio.store import Store
from ctistudio.store.rules import NewRule, store_run_rules
from ctistudio.store.runs import get_run, replace_observables

NETWORK = {
    "items": [
        {"value": "lantern-sync.workers.dev", "kind": "domain", "confidence": "high",
         "source_evidence": "`lantern-sync[.]workers[.]dev` (second stage and C2 over HTTPS)", "justification": "C2"},
        {"value": "https://cdn-update.lantern-sync.workers.dev/s2.ps1", "kind": "url", "confidence": "high",
         "source_evidence": "`hxxps://cdn-update[.]lantern-sync[.]workers[.]dev/s2.ps1`", "justification": "stage 2"},
        {"value": "198.51.100.23", "kind": "ip", "confidence": "high",
         "source_evidence": "`198.51.100[.]23` (C2 fallback)", "justification": "C2 fallback"},
        {"value": "10.20.30.41", "kind": "ip", "confidence": "low",
         "source_evidence": "wmic /node:10.20.30.41 process call create", "justification": "lateral movement"},
    ]
}  # fmt: skip
REGISTRY = {
    "items": [
        {"value": "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\LanternUpdate", "confidence": "high",
         "source_evidence": 'reg add "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run" /v LanternUpdate',
         "justification": "Run key persistence"},
    ]
}  # fmt: skip

ONENOTE_RULE = """title: OneNote Spawning Mshta
id: 5f0c1a2e-8d6b-4c3a-9e7f-1b2c3d4e5f60
status: experimental
description: Detects mshta.exe started by OneNote, the initial access of PAPER LANTERN.
references:
    - https://example.org/ctistudio/demo/operation-paper-lantern
author: ctistudio
date: 2026-10-20
tags:
    - attack.initial-access
    - attack.t1566.001
    - attack.defense-evasion
    - attack.t1218.005
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        ParentImage|endswith: '\\onenote.exe'
        Image|endswith: '\\mshta.exe'
    condition: selection
falsepositives:
    - Unknown
level: high
"""
RUN_KEY_RULE = """title: Lantern Loader Run Key Persistence
id: 8a7b6c5d-4e3f-4a1b-9c8d-7e6f5a4b3c21
status: experimental
description: Detects the Run key value LanternUpdate that starts the Lantern loader through rundll32.
references:
    - https://example.org/ctistudio/demo/operation-paper-lantern
author: ctistudio
date: 2026-10-20
tags:
    - attack.persistence
    - attack.t1547.001
logsource:
    category: registry_set
    product: windows
detection:
    selection:
        TargetObject|endswith: '\\CurrentVersion\\Run\\LanternUpdate'
        Details|contains: 'lanternsvc.dll'
    condition: selection
falsepositives:
    - Unknown
level: high
"""
DEMO_RULES = (ONENOTE_RULE, RUN_KEY_RULE)


def new_rule(text: str) -> NewRule:
    result = validate_rule(text)
    assert result.valid, [i.message for i in result.errors]
    rule = result.rule or {}
    return NewRule(
        rule_uuid=str(rule["id"]),
        title=str(rule["title"]),
        yaml=text,
        logsource=dict(rule["logsource"]),
        level=str(rule.get("level")),
        valid=True,
        errors=[],
    )


def run_demo(settings: Settings, store: Store, article_id: int) -> int:
    """Run the pipeline over the demo article, then give the run the two demo rules; the run's id."""

    async def go() -> int:
        async with Gateway(settings) as gateway:
            service = PipelineService(settings, store, gateway)
            run_id = await service.start_run(article_id, provider="lmstudio", force=True)
            assert await service.wait(run_id) == "succeeded", service.run_view(run_id).error
            return run_id

    run_id = asyncio.run(go())
    with store.session() as session:
        run = get_run(session, run_id)
        items = [
            {
                "kind": kind,
                "value": item["value"],
                "source_evidence": item["source_evidence"],
                "confidence": 0.9,
                "extractor": "model",
                "extra": {"kind": item["kind"]} if "kind" in item else {},
            }
            for kind, answer in (("network", NETWORK), ("registry", REGISTRY))
            for item in answer["items"]
        ]
        replace_observables(session, run_id, run.article_id, items)
        store_run_rules(session, run_id, run.article_id, [new_rule(text) for text in DEMO_RULES])
    return run_id
