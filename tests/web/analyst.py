"""A small scripted analyst for the LM Studio double: what the web tests' pipeline runs are answered with.

Rank 8 with quotes from the demo article; one process-lineage observable (ONENOTE → mshta); one valid Sigma
rule for the process-creation group (mshta running an HTA from Public Libraries); nothing for the other
groups and sub-agents.
"""

from __future__ import annotations

import json

from ctistudio.testing.lmstudio_double import ChatCall

RANK = {
    "score": 8,
    "band": "high",
    "reasons": ["Verbatim command lines", "Process tree OneNote → mshta → PowerShell"],
    "evidence": ["powershell.exe -nop -w hidden -ep bypass -enc"],
}
LINEAGE = {
    "items": [
        {
            "value": "ONENOTE.EXE → mshta.exe",
            "parent": "ONENOTE.EXE",
            "child": "mshta.exe",
            "source_evidence": "`ONENOTE.EXE` spawned `mshta.exe`",
            "justification": "OneNote should not start mshta",
            "confidence": "high",
        }
    ]
}
RULE_TITLE = "Mshta Runs an HTA From Public Libraries"
RULE = f"""title: {RULE_TITLE}
description: Detects mshta.exe opening an HTA file dropped in the Public Libraries folder.
tags:
    - attack.defense-evasion
    - attack.t1218.005
logsource:
    product: windows
    category: process_creation
detection:
    selection_image:
        Image|endswith: '\\mshta.exe'
    selection_path:
        CommandLine|contains|all:
            - '\\Users\\Public\\Libraries\\'
            - '.hta'
    condition: all of selection_*
falsepositives:
    - Software installers that ship HTA front ends
level: high"""


def respond(call: ChatCall) -> str | None:
    if "SIGMA HUNTABILITY" in call.system:
        return json.dumps(RANK)
    for message in call.messages:
        content = str(message.get("content") or "")
        if content.startswith("Task: "):
            return json.dumps(LINEAGE if content.startswith("Task: PROCESS LINEAGE") else {"items": []})
    if "writing Sigma rules" in call.system:
        return RULE if call.last_user.startswith("Log source: category: process_creation") else "no rule"
    return None
