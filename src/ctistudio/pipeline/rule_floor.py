"""The deterministic rule floor: rules built from a group's observables alone, when no model answer is usable.

Each floor rule matches one observable on the log source's own fields — a command line's tool
(``Image|endswith``) and its most distinctive arguments (``CommandLine|contains|all``), a registry value
(``TargetObject|endswith``), a service's name and binary, a domain — through the same renderer as the
model's rules, so it is valid by construction. Rules are marked ``origin: floor`` for reviewers.
"""

from __future__ import annotations

from collections.abc import Sequence

from ctistudio.pipeline.attack_tags import technique_tag, techniques_shown, with_tactics
from ctistudio.pipeline.models import Observable
from ctistudio.pipeline.rule_draft import DetectionItem, RuleDraft
from ctistudio.pipeline.rule_values import ValueChoice, observable_values
from ctistudio.sigma.taxonomy import CONTAINS, CONTAINS_ALL, LogSourceSpec

MAX_FLOOR_RULES = 4
ARGUMENTS_PER_RULE = 3


def _items(spec: LogSourceSpec, choices: list[ValueChoice]) -> list[DetectionItem]:
    """One item per field the observable offers: the field's preferred modifier and its best value(s)."""
    items = []
    for field_spec in spec.fields:
        mine = sorted((c for c in choices if c.field == field_spec.name), key=lambda c: -c.weight)
        if not mine:
            continue
        if field_spec.modifiers[0] == CONTAINS and CONTAINS_ALL in field_spec.modifiers and len(mine) > 1:
            items.append(DetectionItem(field=field_spec.name, modifier=CONTAINS_ALL,
                                       values=[c.value for c in mine[:ARGUMENTS_PER_RULE]]))  # fmt: skip
        else:
            modifier = next((m for m in field_spec.modifiers if mine[0].fits(m)), CONTAINS)
            items.append(DetectionItem(field=field_spec.name, modifier=modifier, values=[mine[0].value]))
        if len(items) == 3:
            break
    return items


def _strength(choices: list[ValueChoice]) -> float:
    best = sorted((c.weight for c in choices), reverse=True)[: ARGUMENTS_PER_RULE + 1]
    return sum(best)


def floor_drafts(
    spec: LogSourceSpec, observables: Sequence[Observable], *, limit: int = MAX_FLOOR_RULES
) -> list[RuleDraft]:
    """Up to ``limit`` rules for the group, the most distinctive observables first, no two alike."""
    candidates = []
    for index, o in enumerate(observables):
        choices = observable_values(spec, o, index)
        items = _items(spec, choices)
        # one lone process image matches every run of that program: not a rule on its own
        if items and not (len(items) == 1 and items[0].field in ("Image", "ParentImage")):
            candidates.append((_strength(choices), index, o, items))
    drafts: list[RuleDraft] = []
    seen: set[str] = set()
    for _, _, o, items in sorted(candidates, key=lambda c: (-c[0], c[1])):
        key = repr(sorted((i.field, i.modifier, tuple(map(str, i.values))) for i in items))
        if key in seen:
            continue
        seen.add(key)
        techniques = [technique_tag(t) for t in techniques_shown([o], spec)]
        drafts.append(
            RuleDraft(
                title="",  # the renderer names it after the values matched
                description=(  # follows the renderer's account of what the rule matches
                    "Built by ctistudio's deterministic floor from one observable of the article (no model answer "
                    "was usable); review before use."
                ),
                level="medium",
                tags=with_tactics([*techniques, f"attack.{spec.tactic}"]),
                falsepositives=[spec.falsepositive],
                selections=[items],
                match="all",
                origin="floor",
            )
        )
        if len(drafts) == limit:
            break
    return drafts
