"""Rules rendered from ANY answer that fits the Sigma answer schema are valid: the guarantee is by construction.

Hypothesis draws the values a group could offer (arbitrary text: backslashes, wildcards, quotes, YAML syntax,
control characters, any Unicode; numbers for numeric fields), builds the answer schema of a log source from
them exactly as the pipeline does, then draws answers from THAT schema (a strategy that walks the schema;
each answer is checked against the schema with jsonschema, so the strategy cannot drift from it). Every rule
of every answer must render and pass pySigma validation with zero errors.

``CTISTUDIO_PROPERTY_EXAMPLES`` sets the number of answers (default 10,000, spread over the log sources).
"""

from __future__ import annotations

import os
import re
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctistudio.pipeline.attack_tags import with_tactics
from ctistudio.pipeline.models import Observable
from ctistudio.pipeline.rule_draft import answer_schema, drafts_from_answer
from ctistudio.pipeline.rule_render import RuleFacts, render_rule, render_yaml
from ctistudio.pipeline.rule_values import ObservableChoices, ValueChoice, clean
from ctistudio.sigma import validate_rule
from ctistudio.sigma.attack import attack_catalog
from ctistudio.sigma.taxonomy import LOG_SOURCES

EXAMPLES = int(os.environ.get("CTISTUDIO_PROPERTY_EXAMPLES", "10000"))
FACTS = RuleFacts("0b6f4c1e-2f7a-4c55-9d1e-6a2b3c4d5e6f", "https://example.org/report", "2026-12-07")
# Characters that break naive YAML or Sigma writers, plus any printable Unicode.
_NASTY = st.sampled_from(list("\\*?'\":#&!|>%@`{}[],-\t\n\r\x00\x1b \u2028éß"))
_LONG_PROSE = (
    "Detects: rundll32 -> comsvcs.dll, MiniDump #lsass 'quoted' {brace} [list] & *wild? /path %TEMP% ",
    "- starts like a list item\tand spans\u2028with odd breaks\x0b\x1b: ",
    "é ß 日本語 \U0001f600 % @ ` | > ! ",
)
_TEXT = st.text(alphabet=st.one_of(_NASTY, st.characters(blacklist_categories=("Cs",))), min_size=1, max_size=40)


def schema_strategy(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of ``schema``, for the subset of JSON Schema the answer schema uses."""
    if "anyOf" in schema:
        return st.one_of([schema_strategy(branch) for branch in schema["anyOf"]])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        # Free prose (title, description, false positives): any short text the schema's pattern allows, or a
        # long one full of what YAML and Sigma treat specially. Drawing every character of long strings would
        # make each example 10x slower without reaching another branch of the renderer.
        pattern = re.compile(schema["pattern"])
        limit = int(re.search(r"\{0,(\d+)\}", schema["pattern"]).group(1))  # type: ignore[union-attr]
        long = [(text * (limit // len(text) + 1))[:limit] for text in _LONG_PROSE]
        short = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=min(limit, 40))
        return st.one_of(short, st.sampled_from(long)).filter(lambda text: pattern.fullmatch(text) is not None)
    if kind == "array":
        items = schema_strategy(schema["items"])
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=schema.get("maxItems", 5))
    if kind == "object":
        required = set(schema.get("required", []))
        fields = {name: schema_strategy(sub) for name, sub in schema["properties"].items() if name in required}
        optional = {name: schema_strategy(sub) for name, sub in schema["properties"].items() if name not in required}
        return st.fixed_dictionaries(fields, optional=optional)
    raise AssertionError(f"the answer schema uses a construct the strategy does not know: {schema}")


_TECHNIQUES = sorted(f"attack.{t.lower()}" for t in attack_catalog().technique_tactics)


def _offer(number: int, values: dict[str, list[str | int]]) -> ObservableChoices:
    observable = Observable(kind="cmdline", value="x", source_evidence="x")
    choices = tuple(ValueChoice(name, v, 1.0, number - 1) for name, vs in values.items() for v in vs)
    return ObservableChoices(number, observable, choices)


@st.composite
def group_and_answer(draw: st.DrawFn) -> tuple[str, dict[str, Any], dict[str, Any]]:
    key = draw(st.sampled_from(sorted(LOG_SOURCES)))
    spec = LOG_SOURCES[key]
    offers = []
    for number in range(1, draw(st.integers(1, 3)) + 1):
        fields = draw(st.lists(st.sampled_from(spec.fields), min_size=1, max_size=len(spec.fields), unique=True))
        values: dict[str, list[str | int]] = {}
        for field_spec in fields:
            if field_spec.numeric:
                values[field_spec.name] = draw(st.lists(st.integers(1, 65535), min_size=1, max_size=4, unique=True))
            else:
                texts = st.lists(_TEXT.filter(lambda t: clean(t) != ""), min_size=1, max_size=6, unique=True)
                values[field_spec.name] = list(draw(texts))
        offers.append(_offer(number, values))
    tags = with_tactics([*draw(st.lists(st.sampled_from(_TECHNIQUES), max_size=4)), f"attack.{spec.tactic}"])
    schema = answer_schema(spec, offers, tags)
    answer = draw(schema_strategy(schema))
    return key, schema, answer


@pytest.mark.slow
@settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(group_and_answer())
def test_every_answer_that_fits_the_schema_renders_to_a_valid_rule(case: tuple[str, dict[str, Any], dict[str, Any]]):
    key, schema, answer = case
    # the strategy produced what a schema-enforcing server could produce (the schema itself is checked once
    # per log source in test_the_answer_schemas_are_valid_json_schema, not here: that check is the slow part)
    jsonschema.Draft202012Validator(schema).validate(answer)
    spec = LOG_SOURCES[key]
    drafts = drafts_from_answer(answer)
    assert drafts
    for draft in drafts:
        rule = render_rule(draft, spec, FACTS, article_title="A report")
        assert rule is not None, f"nothing rendered for {draft}"
        result = validate_rule(render_yaml(rule))
        assert [i.render() for i in result.errors] == [], render_yaml(rule)


def test_the_answer_schemas_are_valid_json_schema():
    for spec in LOG_SOURCES.values():
        offers = [_offer(n, {f.name: [443 if f.numeric else "x\\y*"] for f in spec.fields}) for n in (1, 2)]
        jsonschema.Draft202012Validator.check_schema(answer_schema(spec, offers, [f"attack.{spec.tactic}"]))
