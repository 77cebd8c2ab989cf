"""Condition parsing and DNF expansion: precedence, quantifiers, negation, the cap, canonical merging."""

from __future__ import annotations

import pytest

from ctistudio.sigma.similarity.atoms import Literal
from ctistudio.sigma.similarity.canonical import RuleNotComparable, canonicalize
from ctistudio.sigma.similarity.condition import ConditionSyntaxError, parse_condition
from ctistudio.sigma.similarity.dnf import simplify, to_dnf


def lit(name: str, *values: str, negated: bool = False) -> Literal:
    return Literal(negated, f"{name}|", frozenset(values or (name,)))


def refs(condition: str, names: list[str]):
    return parse_condition(condition, names).root


def dnf_of(condition: str, bodies: dict[str, Literal]) -> set[frozenset[str]]:
    """The DNF of a condition whose identifiers each stand for one literal, as sets of rendered literals."""

    def substitute(node):
        if node[0] == "ref":
            return ("lit", bodies[node[1]])
        if node[0] == "not":
            return ("not", substitute(node[1]))
        return (node[0], tuple(substitute(c) for c in node[1]))

    clauses = to_dnf(substitute(refs(condition, list(bodies))))
    assert clauses is not None
    return {frozenset(lit.render() for lit in clause) for clause in clauses}


ABC = {"a": lit("a"), "b": lit("b"), "c": lit("c")}


def test_and_binds_tighter_than_or() -> None:
    assert dnf_of("a or b and c", ABC) == {frozenset({"a|=a"}), frozenset({"b|=b", "c|=c"})}
    assert dnf_of("(a or b) and c", ABC) == {frozenset({"a|=a", "c|=c"}), frozenset({"b|=b", "c|=c"})}


def test_not_is_pushed_to_the_literals() -> None:
    assert dnf_of("not (a or b)", ABC) == {frozenset({"!a|=a", "!b|=b"})}
    assert dnf_of("a and not (b and c)", ABC) == {frozenset({"a|=a", "!b|=b"}), frozenset({"a|=a", "!c|=c"})}
    assert dnf_of("not not a", ABC) == {frozenset({"a|=a"})}


def test_negated_value_list_becomes_and_of_negations() -> None:
    bodies = {"sel": lit("img", "x"), "filter": lit("user", "system", "svc")}
    assert dnf_of("sel and not filter", bodies) == {frozenset({"img|=x", "!user|=svc", "!user|=system"})}


def test_quantifiers() -> None:
    names = ["selection_a", "selection_b", "filter", "_hidden"]
    assert refs("1 of selection_*", names) == ("or", (("ref", "selection_a"), ("ref", "selection_b")))
    assert refs("all of selection_*", names) == ("and", (("ref", "selection_a"), ("ref", "selection_b")))
    assert refs("any of selection_*", names) == refs("1 of selection_*", names)
    them = refs("all of them", names)
    assert them == ("and", (("ref", "selection_a"), ("ref", "selection_b"), ("ref", "filter")))  # not _hidden
    assert refs("1 of them", names)[0] == "or"
    assert refs("1 of filter", names) == ("ref", "filter")
    two = refs("2 of selection_* or filter", names)
    assert two == ("or", (("and", (("ref", "selection_a"), ("ref", "selection_b"))), ("ref", "filter")))


def test_keywords_are_case_insensitive_and_lists_are_ored() -> None:
    assert dnf_of("A AND NOT B", {"A": lit("a"), "B": lit("b")}) == {frozenset({"a|=a", "!b|=b"})}
    tree = parse_condition(["a", "b"], ["a", "b"])
    assert tree.root == ("or", (("ref", "a"), ("ref", "b")))


def test_aggregation_is_cut_off_with_a_note() -> None:
    tree = parse_condition("a | count() by host > 5", ["a"])
    assert tree.root == ("ref", "a") and "aggregation" in tree.notes[0]


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("a and (b", "unexpected end"),
        ("a and b)", r"unexpected '\)'"),
        ("a and nope", "'nope' is not defined"),
        ("1 of missing_*", "matches no search identifier"),
        ("a or", "unexpected end"),
        ("", "empty"),
    ],
)
def test_syntax_errors(condition: str, message: str) -> None:
    with pytest.raises(ConditionSyntaxError, match=message):
        parse_condition(condition, ["a", "b"])


def test_expansion_is_capped_and_rule_still_hashes() -> None:
    # 8 selections, each an OR of two mappings, all ANDed: 2**8 = 256 clauses > the cap of 128.
    detection = {f"s{i}": [{"f": f"v{i}"}, {"g": f"w{i}"}] for i in range(8)}
    detection["condition"] = "all of s*"
    rule = {"logsource": {"category": "process_creation"}, "detection": detection}
    canonical = canonicalize(rule)
    assert canonical.truncated and canonical.clauses is None
    assert "more than 128 DNF clauses" in canonical.notes[0]
    assert len(canonical.atoms) == 16
    reordered = {"logsource": rule["logsource"], "detection": dict(reversed(list(detection.items())))}
    assert canonicalize(reordered).hash == canonical.hash
    assert canonicalize(rule, max_clauses=256).clauses is not None


def test_simplify_merges_and_absorbs() -> None:
    a, b = lit("img", "a"), lit("img", "b")
    cli = lit("cli", "x")
    merged = simplify([frozenset({a, cli}), frozenset({b, cli})])
    assert merged == [frozenset({lit("img", "a", "b"), cli})]
    absorbed = simplify([frozenset({a}), frozenset({a, cli})])  # a ∨ (a ∧ x) = a
    assert absorbed == [frozenset({a})]


def test_selection_split_equals_one_list() -> None:
    split = {
        "logsource": {"product": "windows", "category": "process_creation"},
        "detection": {
            "sel_a": {"Image|endswith": "\\a.exe"},
            "sel_b": {"Image|endswith": "\\b.exe"},
            "condition": "1 of sel_*",
        },
    }
    single = {
        "logsource": {"category": "process_creation", "product": "windows"},
        "detection": {"selection": {"Image|endswith": ["\\B.exe", "\\A.exe"]}, "condition": "selection"},
    }
    assert canonicalize(split).hash == canonicalize(single).hash


def test_rule_without_detection_is_not_comparable() -> None:
    with pytest.raises(RuleNotComparable):
        canonicalize({"title": "x"})
    with pytest.raises(RuleNotComparable, match="not defined"):
        canonicalize({"detection": {"a": {"x": 1}, "condition": "b"}})
