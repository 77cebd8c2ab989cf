"""What a model (or the floor) chooses for a Sigma rule, and the JSON Schema that keeps a model to it.

The model no longer writes YAML. It fills :func:`answer_schema`, which the server enforces while decoding
(llama.cpp / LM Studio grammars, OpenAI structured output, Anthropic tool input): free text only where a
rule needs prose (title, description, false positives), and everything that makes a rule valid or grounded
chosen from enums built by code — ATT&CK tags that exist, the level, and detection items whose field is a
field of the log source, whose modifier is one that field takes, and whose values come from the group's
observables (one ``anyOf`` branch per field, so a value is never paired with the wrong field). The condition
is a choice between two shapes (all selections, or any of them), optionally with ``and not filter``.

:class:`RuleDraft` is that answer, typed; :mod:`ctistudio.pipeline.rule_render` turns it into a rule.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ctistudio.pipeline.rule_values import ValueChoice
from ctistudio.sigma.fields import LEVELS
from ctistudio.sigma.taxonomy import LogSourceSpec

MAX_RULES = 3
MAX_SELECTIONS = 3
MAX_ITEMS = 4
MAX_VALUES = 4

Level = Literal["informational", "low", "medium", "high", "critical"]


class DetectionItem(BaseModel):
    field: str
    modifier: str
    values: list[str | int] = Field(min_length=1)


class RuleDraft(BaseModel):
    """One rule as chosen: prose, tags, level and detection items (see the module docstring)."""

    title: str = ""
    description: str = ""
    level: Level = "medium"
    tags: list[str] = Field(default_factory=list)
    falsepositives: list[str] = Field(default_factory=list)
    selections: list[list[DetectionItem]] = Field(min_length=1)
    match: Literal["all", "any"] = "all"
    filter: list[DetectionItem] = Field(default_factory=list)
    origin: Literal["model", "floor"] = "model"


def _item_schema(spec: LogSourceSpec, choices: dict[str, list[ValueChoice]]) -> dict[str, Any]:
    branches = []
    for field_spec in spec.fields:
        values = [c.value for c in choices.get(field_spec.name, [])]
        if not values:
            continue
        branches.append(
            {
                "type": "object",
                "properties": {
                    "field": {"const": field_spec.name},
                    "modifier": {"enum": list(field_spec.modifiers)},
                    "values": {"type": "array", "items": {"enum": values}, "minItems": 1, "maxItems": MAX_VALUES},
                },
                "required": ["field", "modifier", "values"],
                "additionalProperties": False,
            }
        )
    return {"anyOf": branches} if len(branches) > 1 else branches[0]


def answer_schema(spec: LogSourceSpec, choices: dict[str, list[ValueChoice]], tags: list[str]) -> dict[str, Any]:
    """The JSON Schema of a Sigma answer for one log-source group (``choices`` must offer one value at least)."""
    item = _item_schema(spec, choices)
    selection = {"type": "array", "items": item, "minItems": 1, "maxItems": MAX_ITEMS}
    rule = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 100},
            "description": {"type": "string", "maxLength": 240},
            "tags": {"type": "array", "items": {"enum": tags}, "maxItems": 4},
            "level": {"enum": list(LEVELS)},
            "selections": {"type": "array", "items": selection, "minItems": 1, "maxItems": MAX_SELECTIONS},
            "match": {"enum": ["all", "any"]},
            "falsepositives": {
                "type": "array",
                "items": {"type": "string", "maxLength": 80},
                "minItems": 1,
                "maxItems": 2,
            },
        },
        "required": ["title", "description", "tags", "level", "selections", "match", "falsepositives"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"rules": {"type": "array", "items": rule, "minItems": 1, "maxItems": MAX_RULES}},
        "required": ["rules"],
        "additionalProperties": False,
    }


def drafts_from_answer(answer: dict[str, Any]) -> list[RuleDraft]:
    """The typed drafts of a schema-valid answer (the schema was checked by the gateway)."""
    return [RuleDraft.model_validate(rule) for rule in answer.get("rules", [])[:MAX_RULES]]
