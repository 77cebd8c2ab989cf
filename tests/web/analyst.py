"""A small scripted analyst for the LM Studio double: what the web tests' pipeline runs are answered with.

Rank 8 citing a sentence of the demo article; the process-lineage agent keeps ONENOTE → mshta, the other
agents keep nothing (their candidates stay as the pre-extractor's); one Sigma rule chosen for the
process-creation group (mshta running an HTA from Public Libraries); an unusable {} for the other groups, which
therefore get the floor's rules.
"""

from __future__ import annotations

import json
import re

from ctistudio.testing.lmstudio_double import ChatCall
from ctistudio.testing.sigma_answers import Item, rule, selection, sigma_answer

RANK = {"score": 8, "reasons": ["verbatim command lines", "process lineage"]}
RANK_CITES = "powershell.exe -nop -w hidden -ep bypass -enc"  # the sentence cited, by how it starts
LINEAGE = "ONENOTE.EXE → mshta.exe"  # the candidate kept, among those listed


def _rank(call: ChatCall) -> str:
    cited = [int(m.group(1)) for m in re.finditer(rf"^\[(\d+)\] {re.escape(RANK_CITES)}", call.last_user, re.M)]
    return json.dumps({**RANK, "evidence": cited})


def _agent(task: str) -> str:
    if not re.search(r"^\d+: ", task, re.M):
        return json.dumps({"new": []})
    keep = [int(m.group(1)) for m in re.finditer(rf"^(\d+): {LINEAGE}$", task, re.M)]
    return json.dumps({"keep": keep if task.startswith("Task: PROCESS LINEAGE") else [], "new": []})


RULE_TITLE = "Mshta Runs an HTA From Public Libraries"
# What the model chooses for the process-creation group: mshta with the HTA it opens (one observable's values)
RULE_ITEMS: list[Item] = [("Image", "endswith", ["\\mshta.exe"]), ("CommandLine", "contains", ["open.hta"])]


def respond(call: ChatCall) -> str | None:
    if "SIGMA HUNTABILITY" in call.system:
        return _rank(call)
    for message in call.messages:
        content = str(message.get("content") or "")
        if content.startswith("Task: "):
            return _agent(content)
    if "choosing Sigma rules" in call.system:
        if not call.last_user.startswith("Log source: category: process_creation"):
            return "{}"
        return sigma_answer(rule(RULE_TITLE, ["attack.t1218.005"], [selection(call.last_user, *RULE_ITEMS)]))
    return None
