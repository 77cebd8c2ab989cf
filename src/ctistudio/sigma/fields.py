"""The rule-level field checks of a Sigma rule: the keys ctistudio requires and the values each may take.

pySigma accepts a rule with only ``title``, ``logsource`` and ``detection``; ctistudio's generated rules
must carry every field a reviewer needs (the issue's list), so these checks come first and their messages
say exactly what to write. Each problem is a :class:`FieldProblem`; :mod:`ctistudio.sigma.validate`
turns them into issues with line numbers.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ctistudio.sigma.rule_yaml import SIGMA_KEY_ORDER, KeyPath

REQUIRED_FIELDS = (
    "title",
    "id",
    "status",
    "description",
    "references",
    "author",
    "date",
    "tags",
    "logsource",
    "detection",
    "falsepositives",
    "level",
)
STATUSES = ("stable", "test", "experimental", "deprecated", "unsupported")
LEVELS = ("informational", "low", "medium", "high", "critical")
LOGSOURCE_KEYS = ("category", "product", "service")
# Other top-level keys of the Sigma specification (besides SIGMA_KEY_ORDER).
OPTIONAL_FIELDS = ("license", "scope", "taxonomy", "correlation", "filter", "type", "generate")

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

_EXAMPLES = {
    "title": "title: Suspicious Certutil Download (a short sentence, at most 256 characters)",
    "id": "id: 0f0a7b52-8f0c-4d7e-9a35-0a3b8e2b6c11 (a random UUID v4)",
    "status": "status: experimental",
    "description": "description: Detects … (one or two sentences: what the rule finds and why it matters)",
    "references": "references: ['https://example.com/the-report'] (the article's URL)",
    "author": "author: ctistudio",
    "date": "date: 2025-01-31 (YYYY-MM-DD)",
    "tags": "tags: ['attack.execution', 'attack.t1059.001']",
    "logsource": "logsource: {category: process_creation, product: windows}",
    "detection": "detection: {selection: {Image|endswith: '\\\\certutil.exe'}, condition: selection}",
    "falsepositives": "falsepositives: ['Legitimate administrative use'] (or ['Unknown'])",
    "level": "level: medium (one of informational, low, medium, high, critical)",
}


@dataclass(frozen=True)
class FieldProblem:
    """One problem with a rule-level field. ``path`` locates it in the rule."""

    severity: str  # "error" | "warning"
    code: str
    message: str
    path: KeyPath


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _text_list_problem(name: str, value: Any) -> FieldProblem | None:
    if isinstance(value, str):
        return FieldProblem(
            "error",
            f"invalid_{name}",
            f"'{name}' must be a list of strings, not a single string; write {_EXAMPLES[name]}",
            (name,),
        )
    if not isinstance(value, list) or not all(_is_text(item) for item in value):
        return FieldProblem(
            "error",
            f"invalid_{name}",
            f"'{name}' must be a list of non-empty strings; write {_EXAMPLES[name]}",
            (name,),
        )
    if not value:
        return FieldProblem("error", f"empty_{name}", f"'{name}' is an empty list; write {_EXAMPLES[name]}", (name,))
    return None


def check_fields(rule: Mapping[str, Any]) -> list[FieldProblem]:
    """Every missing or malformed rule-level field, in the conventional key order."""
    problems: list[FieldProblem] = []
    for name in REQUIRED_FIELDS:
        if name not in rule or rule[name] is None:
            problems.append(
                FieldProblem(
                    "error", "missing_field", f"missing required field '{name}'; add {_EXAMPLES[name]}", (name,)
                )
            )
            continue
        problem = _check_value(name, rule[name])
        if problem is not None:
            problems.append(problem)
    problems.extend(_tag_hints(rule.get("tags")))
    problems.extend(_unknown_keys(rule))
    return problems


def _unknown_keys(rule: Mapping[str, Any]) -> list[FieldProblem]:
    """Top-level keys that look like misspelt Sigma keys (``falsepositive``, ``reference``)."""
    known = (*SIGMA_KEY_ORDER, *OPTIONAL_FIELDS)
    problems = []
    for key in rule:
        if not isinstance(key, str) or key in known:
            continue
        close = difflib.get_close_matches(key.lower(), known, n=1, cutoff=0.75)
        if close:
            problems.append(
                FieldProblem("error", "misspelt_field", f"unknown key {key!r}: did you mean {close[0]!r}?", (key,))
            )
    return problems


def _check_value(name: str, value: Any) -> FieldProblem | None:
    if name in ("title", "description", "author"):
        if not _is_text(value):
            return FieldProblem(
                "error", f"invalid_{name}", f"'{name}' must be a non-empty string; write {_EXAMPLES[name]}", (name,)
            )
        if name == "title" and len(value) > 256:
            return FieldProblem(
                "error", "invalid_title", f"'title' has {len(value)} characters; the limit is 256", (name,)
            )
        return None
    if name in ("references", "tags", "falsepositives"):
        return _text_list_problem(name, value)
    if name == "id":
        if not isinstance(value, str) or not _UUID.match(value.strip()):
            return FieldProblem(
                "error", "invalid_id", f"'id' must be a UUID, got {value!r}; write {_EXAMPLES['id']}", (name,)
            )
        return None
    if name == "date":
        if not isinstance(value, str) or not _DATE.match(value.strip()):
            return FieldProblem("error", "invalid_date", f"'date' must be YYYY-MM-DD, got {value!r}", (name,))
        return None
    if name == "status" and value not in STATUSES:
        return FieldProblem(
            "error", "invalid_status", f"'status' is {value!r}; use one of: {', '.join(STATUSES)}", (name,)
        )
    if name == "level" and value not in LEVELS:
        return FieldProblem("error", "invalid_level", f"'level' is {value!r}; use one of: {', '.join(LEVELS)}", (name,))
    if name == "logsource":
        return _logsource_problem(value)
    if name == "detection":
        return _detection_problem(value)
    return None


def _logsource_problem(value: Any) -> FieldProblem | None:
    if not isinstance(value, Mapping):
        return FieldProblem(
            "error",
            "invalid_logsource",
            f"'logsource' must be a mapping; write {_EXAMPLES['logsource']}",
            ("logsource",),
        )
    if not any(_is_text(value.get(key)) for key in LOGSOURCE_KEYS):
        return FieldProblem(
            "error",
            "invalid_logsource",
            "'logsource' needs at least one of category, product or service as a string; "
            f"write {_EXAMPLES['logsource']}",
            ("logsource",),
        )
    return None


def _detection_problem(value: Any) -> FieldProblem | None:
    if not isinstance(value, Mapping):
        return FieldProblem(
            "error",
            "invalid_detection",
            f"'detection' must be a mapping; write {_EXAMPLES['detection']}",
            ("detection",),
        )
    if "condition" not in value:
        return FieldProblem(
            "error",
            "missing_condition",
            "'detection' has no 'condition'; add e.g. condition: selection (naming the search identifiers to combine)",
            ("detection",),
        )
    if not [key for key in value if key != "condition"]:
        return FieldProblem(
            "error",
            "empty_detection",
            "'detection' defines no search identifier besides 'condition'; "
            "add e.g. selection: {Image|endswith: '\\\\x.exe'}",
            ("detection",),
        )
    return None


def _tag_hints(tags: Any) -> list[FieldProblem]:
    if not isinstance(tags, list) or not tags:
        return []
    texts = [t for t in tags if isinstance(t, str)]
    problems = []
    for index, tag in enumerate(texts):
        if tag != tag.strip().lower() and tag.lower().startswith("attack."):
            problems.append(
                FieldProblem(
                    "error",
                    "invalid_tag_format",
                    f"tag {tag!r} must be lower case: {tag.strip().lower()!r}",
                    ("tags", index),
                )
            )
    if not any(t.lower().startswith("attack.t") for t in texts):
        problems.append(
            FieldProblem(
                "warning",
                "missing_attack_technique",
                "'tags' has no ATT&CK technique tag; add one such as 'attack.t1059.001' next to the tactic tag",
                ("tags",),
            )
        )
    return problems
