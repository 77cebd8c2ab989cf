"""Sigma answers as a good model gives them, for the doubles of tests and benchmarks.

The sigma step's prompt lists the group's observables, each with the values a selection built from it may
match; a selection names its observable by number. :func:`rule` plays the model: given the prompt and the
items wanted, it finds the observable that offers those values and answers with its number, as a model
reading the prompt (and held to the schema) would.
"""

from __future__ import annotations

import json
import re
from typing import Any

Item = tuple[str, str, list[str | int]]  # (field, modifier, values)

_OBSERVABLE = re.compile(r"^(\d+)\. \[")
_FIELD = re.compile(r"^   ([\w-]+): (.*)$")
_VALUE = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d+')


def offers(prompt: str) -> dict[int, dict[str, list[Any]]]:
    """The prompt's observables: number → field → the values offered."""
    out: dict[int, dict[str, list[Any]]] = {}
    current: dict[str, list[Any]] | None = None
    for line in prompt.splitlines():
        if match := _OBSERVABLE.match(line):
            current = out.setdefault(int(match.group(1)), {})
        elif (match := _FIELD.match(line)) and current is not None:
            current[match.group(1)] = [json.loads(v) for v in _VALUE.findall(match.group(2))]
    return out


def selection(prompt: str, *items: Item) -> dict[str, Any]:
    """A selection of ``items`` from the first observable of ``prompt`` that offers all their values."""
    for number, fields in offers(prompt).items():
        if all(set(values) <= set(fields.get(field, [])) for field, _, values in items):
            return {"observable": number, "items": [{"field": f, "modifier": m, "values": v} for f, m, v in items]}
    raise LookupError(f"no observable of the prompt offers {items}")


def rule(title: str, tags: list[str], selections: list[dict[str, Any]], *, match: str = "all") -> dict[str, Any]:
    """One rule of an answer (prose as a careful model writes it)."""
    return {
        "title": title,
        "tags": tags,
        "level": "high",
        "selections": selections,
        "match": match,
        "falsepositives": ["Legitimate administrative activity"],
    }


def lsass_rule(prompt: str) -> dict[str, Any]:
    """The rule for ``rundll32 comsvcs.dll, MiniDump`` of an article that shows it."""
    items: list[Item] = [
        ("Image", "endswith", ["\\rundll32.exe"]),
        ("CommandLine", "contains|all", ["comsvcs.dll", "MiniDump"]),
    ]
    return rule("Rundll32 Dumping LSASS With Comsvcs MiniDump", ["attack.t1003.001"], [selection(prompt, *items)])


def sigma_answer(*rules: dict[str, Any]) -> str:
    """The answer text of a ``sigma`` call choosing ``rules``."""
    return json.dumps({"rules": list(rules)})
