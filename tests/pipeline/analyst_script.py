"""Realistic scripted answers of an LLM analyst for the demo article, served by the LM Studio double.

The script exercises every recovery path of the pipeline:

- rank: a good score with one quote that is not in the article (dropped by the guard);
- extract/command lines: the first answer is malformed JSON (cut off), the gateway's repair gets a valid one,
  which still contains one invented command line (dropped);
- extract/lineage: one real parent → child pair and one invented one (dropped);
- sigma/process creation: one valid rule and one whose YAML is broken; its first repair fixes the YAML but
  uses an unknown modifier, its second repair is valid (two rounds, each sent the full YAML and every error);
- sigma/registry: a cosmetic rewrite of SigmaHQ's "Wdigest Enable UseLogonCredential" (a duplicate) beside a
  novel rule for the loader's Run key, in the same answer;
- sigma/proxy: prose instead of YAML (the group yields no rule, and says so).
"""

from __future__ import annotations

import json
from typing import Any

from ctistudio.testing.lmstudio_double import ChatCall

RANK = {
    "score": 8,
    "band": "high",
    "reasons": [
        "Many verbatim command lines (mshta, rundll32, schtasks, sc, reg)",
        "Process tree OneNote → mshta → PowerShell",
        "Registry persistence and WDigest downgrade",
    ],
    "evidence": [
        "powershell.exe -nop -w hidden -ep bypass -enc",
        "rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump 624 C:\\Windows\\Temp\\lsass.dmp full",
        "The actor deployed Cobalt Strike beacons on every domain controller.",  # not in the article
    ],
}

TRUNCATED_JSON = '{"items": [{"value": "cmd.exe /c whoami /all", "source_evidence": "cmd.exe /c whoami /all", "just'

CMDLINES = {
    "items": [
        {
            "value": "cmd.exe /c whoami /all",
            "source_evidence": "cmd.exe /c whoami /all",
            "justification": "discovery from the loader",
            "confidence": "high",
        },
        {
            "value": "rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump 624 C:\\Windows\\Temp\\lsass.dmp full",
            "source_evidence": "rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump 624 "
            "C:\\Windows\\Temp\\lsass.dmp full",
            "justification": "LSASS dump with a LOLBin",
            "confidence": "high",
        },
        {
            "value": "vssadmin delete shadows /all /quiet",
            "source_evidence": "vssadmin delete shadows /all /quiet",  # invented
            "justification": "ransomware prep",
            "confidence": "medium",
        },
    ]
}

LINEAGE = {
    "items": [
        {
            "value": "ONENOTE.EXE → mshta.exe",
            "parent": "ONENOTE.EXE",
            "child": "mshta.exe",
            "source_evidence": "`ONENOTE.EXE` spawned `mshta.exe`",
            "justification": "Office note-taking app should not start mshta",
            "confidence": "high",
        },
        {
            "value": "winword.exe → cmd.exe",
            "parent": "winword.exe",
            "child": "cmd.exe",
            "source_evidence": "winword.exe spawned cmd.exe",  # invented
            "justification": "macro",
            "confidence": "low",
        },
    ]
}

REGISTRY = {
    "items": [
        {
            "value": "HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\WDigest\\UseLogonCredential",
            "source_evidence": "reg add HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\WDigest /v "
            "UseLogonCredential /t REG_DWORD /d 1 /f",
            "justification": "WDigest downgrade keeps clear-text credentials",
            "confidence": "high",
        },
        {
            "value": "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\LanternUpdate",
            "source_evidence": 'reg add "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run" /v LanternUpdate',
            "justification": "Run key persistence",
            "confidence": "high",
        },
    ]
}

SERVICES = {
    "items": [
        {
            "value": "LanternSvc",
            "source_evidence": 'sc.exe create LanternSvc binPath= "C:\\Windows\\System32\\rundll32.exe '
            'C:\\ProgramData\\lanternsvc.dll,DllRegister"',
            "justification": "service persistence through rundll32",
            "confidence": "high",
        }
    ]
}

TASKS = {
    "items": [
        {
            "value": "Microsoft\\Windows\\Maintenance\\LanternSync",
            "source_evidence": 'schtasks /create /tn "Microsoft\\Windows\\Maintenance\\LanternSync"',
            "justification": "scheduled task persistence as SYSTEM",
            "confidence": "high",
        }
    ]
}

NETWORK = {
    "items": [
        {
            "value": "lantern-sync.workers.dev",
            "kind": "domain",
            "source_evidence": "`lantern-sync[.]workers[.]dev` (second stage and C2 over HTTPS)",
            "justification": "C2",
            "confidence": "high",
        },
        {
            "value": "https://cdn-update.lantern-sync.workers.dev/s2.ps1",
            "kind": "url",
            "source_evidence": "`hxxps://cdn-update[.]lantern-sync[.]workers[.]dev/s2.ps1`",
            "justification": "second stage download",
            "confidence": "high",
        },
    ]
}

QUERIES = {
    "items": [
        {
            "value": 'DeviceProcessEvents | where InitiatingProcessFileName =~ "onenote.exe"',
            "language": "kql",
            "source_evidence": 'DeviceProcessEvents\n| where InitiatingProcessFileName =~ "onenote.exe"',
            "justification": "ready-made hunt",
            "confidence": "high",
        }
    ]
}

AGENT_ANSWERS = {
    "COMMAND LINES": CMDLINES,
    "PROCESS LINEAGE": LINEAGE,
    "REGISTRY ARTEFACTS": REGISTRY,
    "WINDOWS SERVICES": SERVICES,
    "SCHEDULED TASKS": TASKS,
    "NETWORK INDICATORS": NETWORK,
    "HUNT QUERIES": QUERIES,
}

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


def respond(call: ChatCall) -> str | None:
    """The analyst's answer to one chat request (``None``: let the double answer by default)."""
    if "SIGMA HUNTABILITY" in call.system:
        return json.dumps(RANK)
    task = _task_of(call)
    if task is not None:
        repairing = "Your previous answer could not be used" in call.last_user
        if task == "COMMAND LINES" and not repairing:
            return TRUNCATED_JSON
        return json.dumps(AGENT_ANSWERS[task])
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
