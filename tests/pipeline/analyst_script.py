"""Realistic scripted answers of an LLM analyst for the demo article, served by the LM Studio double.

The script exercises every recovery path of the pipeline:

- rank: a good score citing two sentences by number;
- extract/command lines: the first answer is malformed JSON (cut off), the gateway's repair gets a valid one
  that selects two candidates and adds one invented command line (dropped);
- extract/lineage: selects the real parent → child pair and adds an invented one (dropped);
- extract/registry: adds the WDigest value name under its key (kept: key and name are both in the article);
- sigma/process creation: one valid rule and one whose YAML is broken; its first repair fixes the YAML but
  uses an unknown modifier, its second repair is valid (two rounds, each sent the full YAML and every error);
- sigma/registry: a cosmetic rewrite of SigmaHQ's "Wdigest Enable UseLogonCredential" (a duplicate) beside a
  novel rule for the loader's Run key, in the same answer;
- sigma/proxy: prose instead of YAML (the group yields no rule, and says so).
"""

from __future__ import annotations

import json
import re
from typing import Any

from ctistudio.testing.lmstudio_double import ChatCall

# rank: the sentences it cites, by how they start (the numbers are the prompt's)
RANK_SCORE = {
    "score": 8,
    "reasons": ["verbatim command lines", "process lineage", "registry changes"],
}
RANK_CITES = (
    "powershell.exe -nop -w hidden -ep bypass -enc",
    "rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump",
)

TRUNCATED_JSON = '{"keep": [7, 11], "new": ["vssadmin delete'

# extraction: per task, the listed candidates it keeps (by how they start) and the new items it adds
AGENT_ANSWERS: dict[str, tuple[tuple[str, ...], list[Any]]] = {
    "COMMAND LINES": (
        ("cmd.exe /c whoami /all", "rundll32.exe C:\\Windows\\System32\\comsvcs.dll"),
        ["vssadmin delete shadows /all /quiet"],  # invented: dropped
    ),
    "PROCESS LINEAGE": (
        ("ONENOTE.EXE → mshta.exe",),
        [{"parent": "winword.exe", "child": "cmd.exe"}],  # invented: winword is never named, dropped
    ),
    "REGISTRY ARTEFACTS": (
        ("HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run", "HKLM\\SYSTEM\\CurrentControlSet\\Control"),
        ["HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\WDigest\\UseLogonCredential"],
    ),
    "WINDOWS SERVICES": (("LanternSvc",), []),
    "SCHEDULED TASKS": (("Microsoft\\Windows\\Maintenance\\LanternSync",), []),
    "NETWORK INDICATORS": (("lantern-sync.workers.dev", "https://cdn-update.lantern-sync.workers.dev/s2.ps1"), []),
    "HUNT QUERIES": (("DeviceProcessEvents",), []),
}


def numbered(text: str, pattern: str) -> dict[str, int]:
    """``{line: number}`` of the numbered lines of a prompt (``1: …`` candidates or ``[1] …`` sentences)."""
    return {m.group(2): int(m.group(1)) for m in re.finditer(pattern, text, re.M)}


def rank_answer(call: ChatCall) -> str:
    sentences = numbered(call.last_user, r"^\[(\d+)\] (.*)$")
    cited = [n for text, n in sentences.items() if text.startswith(RANK_CITES)]
    return json.dumps({**RANK_SCORE, "evidence": cited})


def agent_answer(call: ChatCall, task: str) -> str:
    starts, new = AGENT_ANSWERS[task]
    candidates = numbered(call.last_user, r"^(\d+): (.*)$")
    keep = [n for text, n in candidates.items() if text.startswith(starts)]
    answer: dict[str, Any] = {"keep": keep, "new": new} if candidates else {"new": new}
    return json.dumps(answer)


ONENOTE_RULE = """title: OneNote Spawning Mshta
description: Detects mshta.exe started by OneNote, the initial access of PAPER LANTERN.
tags:
    - attack.execution
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
level: high"""

BROKEN_RULE = """title: Lantern Loader Export Called Through Rundll32
description: Detects rundll32 calling the DllRegister export of the Lantern loader DLL.
tags:
    - attack.t1218.011
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        Image|endswith: '\\rundll32.exe'
        CommandLine|contains|all:
            - 'lanternsvc.dll'
            - 'DllRegister'
   condition: selection
falsepositives:
    - Unknown
level: high"""

HALF_FIXED_RULE = BROKEN_RULE.replace("   condition: selection", "    condition: selection").replace(
    "CommandLine|contains|all", "CommandLine|contain|all"
)
FIXED_RULE = BROKEN_RULE.replace("   condition: selection", "    condition: selection")

WDIGEST_DUPLICATE = """title: WDigest UseLogonCredential Turned On
description: Detects the WDigest downgrade that keeps clear-text credentials in memory.
tags:
    - attack.t1112
    - attack.defense-impairment
logsource:
    product: windows
    category: registry_set
detection:
    selection:
        Details: 'DWORD (0x00000001)'
        TargetObject|endswith: 'wdigest\\uselogoncredential'
    condition: selection
falsepositives:
    - Unknown
level: high"""

RUN_KEY_RULE = """title: Lantern Loader Run Key Persistence
description: Detects the Run key value LanternUpdate that starts the Lantern loader through rundll32.
tags:
    - attack.persistence
    - attack.t1547.001
logsource:
    category: registry_set
    product: windows
detection:
    selection:
        TargetObject|endswith: '\\CurrentVersion\\Run\\LanternUpdate'
        Details|contains|all:
            - 'rundll32'
            - 'lanternsvc.dll,DllRegister'
    condition: selection
falsepositives:
    - Unknown
level: high"""

SERVICE_RULE = """title: Lantern Service Installed
description: Detects the installation of the LanternSvc service that runs the loader through rundll32.
tags:
    - attack.persistence
    - attack.t1543.003
logsource:
    product: windows
    service: system
detection:
    selection:
        Provider_Name: 'Service Control Manager'
        EventID: 7045
        ImagePath|contains|all:
            - 'rundll32'
            - 'lanternsvc.dll'
    condition: selection
falsepositives:
    - Unknown
level: high"""

DNS_RULE = """title: Lantern C2 Domain Resolved
description: Detects DNS queries for the Lantern C2 domain on Cloudflare Workers.
tags:
    - attack.command-and-control
    - attack.t1071.001
logsource:
    category: dns_query
    product: windows
detection:
    selection:
        QueryName|endswith: 'lantern-sync.workers.dev'
    condition: selection
falsepositives:
    - Unknown
level: high"""

GROUP_ANSWERS = {
    "category: process_creation, product: windows": f"```yaml\n{ONENOTE_RULE}\n---\n{BROKEN_RULE}\n```",
    "category: registry_set, product: windows": f"{WDIGEST_DUPLICATE}\n---\n{RUN_KEY_RULE}",
    "product: windows, service: system": SERVICE_RULE,
    "category: dns_query, product: windows": DNS_RULE,
    "category: proxy": "A URL alone is an indicator of compromise, not a behaviour: no rule.",
}


def _task_of(call: ChatCall) -> str | None:
    for message in call.messages:
        content = str(message.get("content") or "")
        if content.startswith("Task: "):
            return content[len("Task: ") :].split(".", 1)[0]
    return None


def _first_task_call(call: ChatCall) -> ChatCall:
    """A repair request carries the task in an earlier message: answer from that one."""
    for message in call.messages:
        content = str(message.get("content") or "")
        if content.startswith("Task: "):
            return ChatCall(**{**vars(call), "messages": [message]})
    return call


def respond(call: ChatCall) -> str | None:
    """The analyst's answer to one chat request (``None``: let the double answer by default)."""
    if "SIGMA HUNTABILITY" in call.system:
        return rank_answer(call)
    task = _task_of(call)
    if task is not None:
        repairing = "Your previous answer could not be used" in call.last_user
        if task == "COMMAND LINES" and not repairing:
            return TRUNCATED_JSON
        return agent_answer(_first_task_call(call), task)
    if "writing Sigma rules" in call.system:
        return _sigma(call.last_user)
    return None


def _sigma(prompt: str) -> str:
    if prompt.startswith("The Sigma rule below does not pass validation"):
        if "CommandLine|contain|all" in prompt:
            return FIXED_RULE
        return HALF_FIXED_RULE
    for key, answer in GROUP_ANSWERS.items():
        if prompt.startswith(f"Log source: {key}\n"):
            return answer
    return "no rule"


def sigma_requests(double: Any) -> list[dict[str, Any]]:
    """The bodies of the chat requests the double received for Sigma generation or repair."""
    return [
        r.body
        for r in double.requests_to("/v1/chat/completions")
        if "writing Sigma rules" in str(r.body["messages"][0]["content"])
    ]
