"""Realistic scripted answers of an LLM analyst for the demo article, served by the LM Studio double.

The script exercises every recovery path of the pipeline:

- rank: a good score citing two sentences by number;
- extract/command lines: the first answer is malformed JSON (cut off), the gateway's repair gets a valid one
  that selects two candidates and adds one invented command line (dropped);
- extract/lineage: selects the real parent → child pair and adds an invented one (dropped);
- extract/registry: adds the WDigest value name under its key (kept: key and name are both in the article);
- sigma/process creation: two rules chosen from the schema's enums and one on a program alone (not taken);
- sigma/registry: a rewrite of SigmaHQ's "Wdigest Enable UseLogonCredential" (a duplicate) beside a novel
  rule for the loader's Run key, in the same answer;
- sigma/proxy and network connections: an empty object (those groups get the floor's rules, and say so).
"""

from __future__ import annotations

import json
import re
from typing import Any

from ctistudio.testing.lmstudio_double import ChatCall
from ctistudio.testing.sigma_answers import Item, rule, selection, sigma_answer

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


# Per group: the rules the analyst chooses, as (title, tags, [items of each selection]); the observable each
# selection is built from is found in the prompt (sigma_answers.selection), as a model reading it would.
RuleChoice = tuple[str, list[str], list[list[Item]]]
ONENOTE_RULE: RuleChoice = (
    "OneNote Spawning Mshta",
    ["attack.t1218.005"],
    [[("ParentImage", "endswith", ["\\ONENOTE.EXE"]), ("Image", "endswith", ["\\mshta.exe"])]],
)
LOADER_RULE: RuleChoice = (
    "Lantern Loader Export Called Through Rundll32",
    ["attack.t1218.011"],
    [[("Image", "endswith", ["\\rundll32.exe"]), ("CommandLine", "contains|all", ["lanternsvc.dll", "DllRegister"])]],
)
# a program alone: matches every run of it, so the pipeline does not take it
BARE_RULE: RuleChoice = ("Rundll32 Executed", ["attack.t1218.011"], [[("Image", "endswith", ["\\rundll32.exe"])]])
WDIGEST_DUPLICATE: RuleChoice = (
    "WDigest UseLogonCredential Turned On",
    ["attack.t1112"],
    [[("TargetObject", "endswith", ["\\WDigest\\UseLogonCredential"]), ("Details", "equals", ["DWORD (0x00000001)"])]],
)
RUN_KEY_RULE: RuleChoice = (
    "Lantern Loader Run Key Persistence",
    ["attack.t1547.001"],
    [
        [
            ("TargetObject", "endswith", ["\\CurrentVersion\\Run\\LanternUpdate"]),
            ("Details", "contains|all", ["lanternsvc.dll", "DllRegister"]),
        ]
    ],
)
SERVICE_RULE: RuleChoice = (
    "Lantern Service Installed",
    ["attack.t1543.003"],
    [[("ServiceName", "equals", ["LanternSvc"]), ("ImagePath", "contains|all", ["rundll32.exe", "lanternsvc.dll"])]],
)
DNS_RULE: RuleChoice = (
    "Lantern C2 Domain Resolved",
    ["attack.t1071.004"],
    [[("QueryName", "endswith", ["lantern-sync.workers.dev"])]],
)

GROUP_ANSWERS: dict[str, list[RuleChoice]] = {
    "category: process_creation, product: windows": [ONENOTE_RULE, LOADER_RULE, BARE_RULE],
    "category: registry_set, product: windows": [WDIGEST_DUPLICATE, RUN_KEY_RULE],
    "product: windows, service: system": [SERVICE_RULE],
    "category: dns_query, product: windows": [DNS_RULE],
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
    if "choosing Sigma rules" in call.system:
        return _sigma(call.last_user)
    return None


def _sigma(prompt: str) -> str:
    for key, rules in GROUP_ANSWERS.items():
        if prompt.startswith(f"Log source: {key}\n"):
            chosen = [rule(title, tags, [selection(prompt, *items) for items in picks]) for title, tags, picks in rules]
            return sigma_answer(*chosen)
    return "{}"  # proxy, network connections: an unusable answer, so those groups get the floor's rules


def sigma_requests(double: Any) -> list[dict[str, Any]]:
    """The bodies of the chat requests the double received for Sigma generation."""
    return [
        r.body
        for r in double.requests_to("/v1/chat/completions")
        if "choosing Sigma rules" in str(r.body["messages"][0]["content"])
    ]
