"""The compact grammar: what it translates, what it leaves to response_format, and that answers it allows
fit the schema. The real llama-server parsing every pipeline schema's grammar is in
tests/engines/test_llamacpp_server.py."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from ctistudio.llm.grammar import compact_grammar, literal
from ctistudio.pipeline.models import Observable
from ctistudio.pipeline.rule_draft import answer_schema
from ctistudio.pipeline.rule_values import ObservableChoices, ValueChoice
from ctistudio.sigma.taxonomy import log_source


def test_literals_escape_what_gbnf_and_json_need():
    assert literal('"\\\\Run\\\\Updater"') == '"\\"\\\\\\\\Run\\\\\\\\Updater\\""'
    assert literal("a\nb\t\x01") == '"a\\nb\\t\\x01"'


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/$defs/x"},
        {"type": "string", "format": "date"},
        {"type": "string", "pattern": "^[a-z]+$"},
        {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        {"type": "object", "properties": {"a": {}}},
        {"type": "object", "additionalProperties": {"type": "string"}},
        {"enum": []},
    ],
)
def test_what_it_does_not_translate_goes_as_response_format(schema):
    assert compact_grammar(schema) is None


def test_no_rule_allows_a_line_break_or_more_than_one_space():
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
            "b": {"type": "string", "pattern": '^[^\\\\"\\n]{0,80}$'},
            "c": {"anyOf": [{"const": 1}, {"enum": ["x", "y"]}]},
        },
        "required": ["a", "b"],
    }
    grammar = compact_grammar(schema)
    assert grammar is not None
    assert 'ws ::= " "?' in grammar
    rules = [line for line in grammar.splitlines() if not line.startswith("char ::=")]  # char: JSON's escapes
    assert not any("\\n" in line or "\\t" in line or "[ " in line for line in rules), grammar
    assert re.search(r"\{0,2\}", grammar)  # maxItems 3: one item and at most two more
    assert "{0,80}" in grammar and "\\x0A" in grammar and "\\x22" in grammar and "\\x5C" in grammar  # the pattern


def test_every_pipeline_schema_is_translated():
    from ctistudio.pipeline.rank import rank_request
    from ctistudio.pipeline.selection import selection_schema
    from ctistudio.resources import demo_article

    schemas = [rank_request(demo_article())[1]]
    schemas += [selection_schema(kind, n) for kind in ("cmdline", "lineage", "registry") for n in (0, 5)]
    offer = ObservableChoices(
        1,
        Observable(kind="registry", value="x", source_evidence="x"),
        (ValueChoice("TargetObject", "\\Run\\Updater", 1.0, 0), ValueChoice("Details", 'a "q" \\ b', 1.0, 0)),
    )
    schemas.append(answer_schema(log_source("windows/registry_set"), [offer], ["attack.t1547.001"]))
    for schema in schemas:
        assert compact_grammar(schema) is not None, json.dumps(schema)[:200]


def test_enum_strings_are_the_json_encoding_of_each_value():
    # A backslash in a value is written "\\" in JSON; the grammar must demand exactly that text.
    grammar = compact_grammar({"enum": ["\\Run\\Updater"]})
    assert grammar is not None
    body = grammar.splitlines()[1].split(" ::= ", 1)[1]
    assert body == literal(json.dumps("\\Run\\Updater"))
    jsonschema.validate(json.loads(json.dumps("\\Run\\Updater")), {"enum": ["\\Run\\Updater"]})
