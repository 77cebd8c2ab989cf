"""The Sigma answer schema leaves a small model no room to repeat itself, and drafts keep each selection once."""

from __future__ import annotations

import asyncio
import json

import jsonschema

from ctistudio.pipeline.attack_tags import tag_choices
from ctistudio.pipeline.extract import extract_observables
from ctistudio.pipeline.models import Observable
from ctistudio.pipeline.rule_draft import FALSE_POSITIVES, answer_schema, drafts_from_answer
from ctistudio.pipeline.rule_values import ObservableChoices, ValueChoice, observable_choices
from ctistudio.pipeline.sigma_gen import group_observables
from ctistudio.resources import demo_article
from ctistudio.sigma.taxonomy import log_source

REGISTRY = log_source("windows/registry_set")


def _offer(number: int, values: dict[str, list[str | int]]) -> ObservableChoices:
    observable = Observable(kind="registry", value="x", source_evidence="x")
    choices = tuple(ValueChoice(name, v, 1.0, number - 1) for name, vs in values.items() for v in vs)
    return ObservableChoices(number, observable, choices)


def _arrays(schema: object, path: str = "") -> dict[str, int]:
    """maxItems of every array in ``schema``, by where it is."""
    found: dict[str, int] = {}
    if isinstance(schema, dict):
        if schema.get("type") == "array":
            found[path] = max(found.get(path, 0), schema["maxItems"])
        for key, sub in schema.items():
            for where, most in _arrays(sub, f"{path}/{key}").items():
                found[where] = max(found.get(where, 0), most)
    elif isinstance(schema, list):
        for sub in schema:
            for where, most in _arrays(sub, path).items():
                found[where] = max(found.get(where, 0), most)
    return found


def test_every_array_is_at_most_as_long_as_what_it_can_hold_without_repeating():
    # one observable, one path value: a model cannot write the path four times, three selections or three rules
    schema = answer_schema(REGISTRY, [_offer(1, {"TargetObject": ["\\Run\\Updater"]})], ["attack.t1547.001"])
    arrays = _arrays(schema)
    assert arrays["/properties/rules"] == 1
    assert arrays["/properties/rules/items/properties/selections"] == 1
    assert arrays["/properties/rules/items/properties/selections/items/properties/items"] == 1
    assert arrays["/properties/rules/items/properties/selections/items/properties/items/items/properties/values"] == 1
    assert arrays["/properties/rules/items/properties/tags"] == 1

    two = [_offer(1, {"TargetObject": ["\\Run\\A", "\\A"], "Details": ["a.exe"]}), _offer(2, {"TargetObject": ["\\B"]})]
    arrays = _arrays(answer_schema(REGISTRY, two, ["attack.t1547.001", "attack.t1112"]))
    assert arrays["/properties/rules"] == 2 and arrays["/properties/rules/items/properties/selections"] == 2
    assert arrays["/properties/rules/items/properties/selections/items/anyOf/properties/items"] == 2


def test_false_positives_are_chosen_from_a_list_with_the_log_sources_own_case_first():
    schema = answer_schema(REGISTRY, [_offer(1, {"TargetObject": ["\\Run\\Updater"]})], ["attack.t1547.001"])
    rule = schema["properties"]["rules"]["items"]["properties"]
    choices = rule["falsepositives"]["items"]["enum"]
    assert choices[0] == REGISTRY.falsepositive and set(FALSE_POSITIVES) <= set(choices)


def test_a_selection_written_twice_is_kept_once():
    item = {"field": "TargetObject", "modifier": "endswith", "values": ["\\Run\\Updater"]}
    answer = {
        "rules": [
            {
                "title": "Run Key Updater",
                "selections": [{"observable": 1, "items": [item]}, {"observable": 1, "items": [dict(item)]}],
                "match": "all",
            }
        ]
    }
    (draft,) = drafts_from_answer(answer)
    assert len(draft.selections) == 1


def test_tags_offered_are_techniques_their_tactics_come_from_code():
    observables = asyncio.run(extract_observables(None, demo_article())).observables
    for group in group_observables(observables):
        tags = tag_choices(demo_article(), group.observables, group.spec)
        assert tags and all(tag.startswith("attack.t") for tag in tags), (group.key, tags)
        assert json.dumps(tags).count("attack.t1566.001") <= 1


PROCESS = log_source("windows/process_creation")
RUNDLL32 = "rundll32.exe C:\\Users\\victim\\AppData\\Roaming\\Crypto\\lanternsvc.dll,DllRegister"


def _answer(*items: dict[str, object]) -> dict[str, object]:
    selection = {"observable": 1, "items": list(items)}
    rule = {"title": "t", "tags": [], "level": "high", "selections": [selection], "match": "all"}
    return {"rules": [{**rule, "falsepositives": ["Legitimate administrative activity"]}]}


def test_a_modifier_goes_only_with_values_it_can_match():
    # the 0.5B model wrote CommandLine|startswith: hidden and Image|equals: \mshta.exe — rules that never fire
    offers = observable_choices(PROCESS, [Observable(kind="cmdline", value=RUNDLL32, source_evidence=RUNDLL32)])
    schema = answer_schema(PROCESS, offers, ["attack.t1218.011"])
    validator = jsonschema.Draft202012Validator(schema)

    def fits(field: str, modifier: str, *values: str) -> bool:
        return validator.is_valid(_answer({"field": field, "modifier": modifier, "values": list(values)}))

    assert fits("Image", "endswith", "\\rundll32.exe") and not fits("Image", "equals", "\\rundll32.exe")
    assert fits("CommandLine", "contains|all", "lanternsvc.dll", "DllRegister")  # inside and end together
    assert fits("CommandLine", "endswith", "lanternsvc.dll,DllRegister")  # the command ends with it
    assert not fits("CommandLine", "endswith", "lanternsvc.dll")  # an argument in the middle
    assert not fits("CommandLine", "startswith", "lanternsvc.dll,DllRegister")
