"""What a model (or the floor) chooses for a Sigma rule, and the JSON Schema that keeps a model to it.

The model no longer writes YAML. It fills :func:`answer_schema`, which the server enforces while decoding
(llama.cpp / LM Studio grammars, OpenAI structured output, Anthropic tool input): free text only for the
title (the description is written by code from what the rule matches), and everything that makes a rule
valid or grounded chosen from enums built by code — ATT&CK tags that exist, the level, and detection
selections. A selection names the observable it is built from (one ``anyOf`` branch per observable), and
its items take a field of the log source that this observable offers a value for, a modifier that field
takes and that can match them, and values of that observable (``anyOf`` branches per field and modifiers,
so a value is never paired with the wrong field, another event's value or a modifier that cannot match it).
The condition is a choice between two shapes (all selections, or any of them).

:class:`RuleDraft` is that answer, typed; :mod:`ctistudio.pipeline.rule_render` turns it into a rule.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ctistudio.pipeline.rule_values import ObservableChoices
from ctistudio.sigma.fields import LEVELS
from ctistudio.sigma.taxonomy import LogSourceSpec

MAX_RULES = 3
MAX_SELECTIONS = 3
MAX_ITEMS = 4
MAX_VALUES = 4
TITLE_CHARS = 60  # "Rundll32 Dumping LSASS With Comsvcs MiniDump" is 44

# What may match a rule besides the attack, in SigmaHQ's words; the log source's own case comes first. Chosen,
# not written: small models wrote a program name or the end of the JSON into this string.
FALSE_POSITIVES = (
    "Legitimate administrative activity",
    "Software installation or update",
    "Management, monitoring or backup software",
    "Authorised security testing",
    "Unknown",
)

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
    origin: Literal["model", "floor"] = "model"


def _item_schema(spec: LogSourceSpec, offer: ObservableChoices) -> dict[str, Any]:
    """An item of a selection built from ``offer``: one of its fields, a modifier that field takes and that can
    match the values chosen with it (a command line's argument is never matched with ``startswith``), values.

    Every array is at most as long as what it can hold without repeating: a small model fills an array to its
    ``maxItems`` with the same value again (servers do not enforce ``uniqueItems``), which cost most of the
    answer's tokens when a field with one value allowed four."""
    branches = []
    for field_spec in spec.fields:
        # modifiers grouped by the values they can match (ValueChoice.fits): one branch per group, so values
        # that fit "contains|all" together stay choosable together, and "endswith" takes only those at the end
        modifiers_of: dict[tuple[str | int, ...], list[str]] = {}
        for modifier in field_spec.modifiers:
            fitting = tuple(dict.fromkeys(c.value for c in offer.of(field_spec.name) if c.fits(modifier)))
            if fitting:
                modifiers_of.setdefault(fitting, []).append(modifier)
        for values, modifiers in modifiers_of.items():
            branches.append(
                {
                    "type": "object",
                    "properties": {
                        "field": {"const": field_spec.name},
                        "modifier": {"enum": modifiers},
                        "values": {
                            "type": "array",
                            "items": {"enum": list(values)},
                            "minItems": 1,
                            "maxItems": min(MAX_VALUES, len(values)),
                        },
                    },
                    "required": ["field", "modifier", "values"],
                    "additionalProperties": False,
                }
            )
    return {"anyOf": branches} if len(branches) > 1 else branches[0]


def _fields_offered(spec: LogSourceSpec, offer: ObservableChoices) -> int:
    return sum(1 for field_spec in spec.fields if offer.of(field_spec.name))


def _selection_schema(spec: LogSourceSpec, offer: ObservableChoices) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "observable": {"const": offer.number},
            "items": {
                "type": "array",
                "items": _item_schema(spec, offer),
                "minItems": 1,
                "maxItems": min(MAX_ITEMS, _fields_offered(spec, offer)),
            },
        },
        "required": ["observable", "items"],
        "additionalProperties": False,
    }


def _prose(limit: int) -> dict[str, Any]:
    """A prose string: bounded, and without backslashes, quotes or line breaks — small models that start
    quoting a Windows path in a description can loop on escaped backslashes until the token budget."""
    return {"type": "string", "pattern": f'^[^\\\\"\\n]{{0,{limit}}}$'}


def false_positive_choices(spec: LogSourceSpec) -> list[str]:
    return list(dict.fromkeys([spec.falsepositive, *FALSE_POSITIVES]))


def answer_schema(spec: LogSourceSpec, offers: list[ObservableChoices], tags: list[str]) -> dict[str, Any]:
    """The JSON Schema of a Sigma answer for one log-source group (``offers``: one observable at least).

    A selection names the observable it is built from, and its items may only use that observable's values."""
    branches = [_selection_schema(spec, offer) for offer in offers]
    most = min(MAX_RULES, MAX_SELECTIONS, len(offers))  # a rule, or a selection, per observable at most
    selection = {"anyOf": branches} if len(branches) > 1 else branches[0]
    rule = {
        "type": "object",
        "properties": {
            "title": _prose(TITLE_CHARS),
            "tags": {"type": "array", "items": {"enum": tags}, "maxItems": min(4, len(tags))},
            "level": {"enum": list(LEVELS)},
            "selections": {"type": "array", "items": selection, "minItems": 1, "maxItems": most},
            "match": {"enum": ["all", "any"]},
            "falsepositives": {
                "type": "array",
                "items": {"enum": false_positive_choices(spec)},
                "minItems": 1,
                "maxItems": 2,
            },
        },
        "required": ["title", "tags", "level", "selections", "match", "falsepositives"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"rules": {"type": "array", "items": rule, "minItems": 1, "maxItems": most}},
        "required": ["rules"],
        "additionalProperties": False,
    }


def selection_key(items: list[DetectionItem]) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """What a selection matches, independent of the order of its items and values."""
    return tuple(sorted((i.field, i.modifier, tuple(sorted(map(str, i.values)))) for i in items))


def drafts_from_answer(answer: dict[str, Any]) -> list[RuleDraft]:
    """The typed drafts of a schema-valid answer (the schema was checked by the gateway).

    Selections of different observables describe different events: "all" of them could never match one
    event, so they are combined with "any"."""
    drafts = []
    for rule in answer.get("rules", [])[:MAX_RULES]:
        chosen = rule.get("selections") or []
        sources = {selection.get("observable") for selection in chosen}
        match = rule.get("match", "all") if len(sources) <= 1 else "any"
        selections = [selection.get("items") or [] for selection in chosen]
        draft = RuleDraft.model_validate({**rule, "selections": selections, "match": match})
        distinct: dict[tuple[tuple[str, str, tuple[str, ...]], ...], list[DetectionItem]] = {}
        for items in draft.selections:  # each selection once: a small model repeats one it already wrote
            distinct.setdefault(selection_key(items), items)
        drafts.append(draft.model_copy(update={"selections": list(distinct.values())}))
    return drafts
