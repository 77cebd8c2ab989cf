"""A Sigma rule's canonical form: log-source class, atom set, simplified DNF and the hash of it all.

Two rules that differ only cosmetically — key order, search identifier names, list order, value case,
``contains`` versus ``*x*``, ``1 of sel_*`` over single values versus one list — get the same atoms, the same
clauses and the same hash. Changing the normalisation changes what the index holds, so
:data:`NORMALISATION_VERSION` is stored in every index and checked on load.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ctistudio.sigma.similarity.atoms import Literal, detection_node, literal_features, logsource_class
from ctistudio.sigma.similarity.condition import ConditionSyntaxError, Node, parse_condition
from ctistudio.sigma.similarity.dnf import MAX_CLAUSES, Clause, canonical_dnf, canonical_tree, simplify, to_dnf, to_nnf

NORMALISATION_VERSION = 3  # 3: a path separator right after a leading wildcard is dropped


class RuleNotComparable(ValueError):
    """The rule has no usable detection (missing, not a mapping, or a broken condition)."""


@dataclass(frozen=True)
class CanonicalRule:
    """What the similarity engine knows of one rule."""

    logsource: tuple[str, str, str]
    atoms: frozenset[str]
    clauses: list[Clause] | None  # None: the DNF exceeded the cap (truncated)
    hash: str
    notes: list[str] = field(default_factory=list)
    features: frozenset[str] = frozenset()  # near-match features (``~field|mods|text``), see atoms.literal_features

    @property
    def logsource_key(self) -> str:
        return "/".join(part or "-" for part in self.logsource)

    @property
    def truncated(self) -> bool:
        return self.clauses is None


def _substitute(node: Node, bodies: dict[str, Node]) -> Node:
    kind = node[0]
    if kind == "ref":
        return bodies[node[1]]
    if kind == "not":
        return ("not", _substitute(node[1], bodies))
    return (kind, tuple(_substitute(child, bodies) for child in node[1]))


def _literals(node: Node) -> list[Literal]:
    if node[0] == "lit":
        return [node[1]]
    children = (node[1],) if node[0] == "not" else node[1]
    return [lit for child in children for lit in _literals(child)]


def canonicalize(rule: Mapping[str, Any], max_clauses: int = MAX_CLAUSES) -> CanonicalRule:
    """Canonical form of a parsed rule (raises :class:`RuleNotComparable` if it has no usable detection)."""
    detection = rule.get("detection")
    if not isinstance(detection, Mapping) or "condition" not in detection:
        raise RuleNotComparable("the rule has no 'detection' mapping with a 'condition'")
    names = [str(k) for k in detection if k != "condition"]
    try:
        tree = parse_condition(detection["condition"], names)
    except ConditionSyntaxError as exc:
        raise RuleNotComparable(f"condition {detection['condition']!r}: {exc}") from exc
    bodies = {str(k): detection_node(v) for k, v in detection.items() if k != "condition"}
    node = _substitute(tree.root, bodies)
    nnf = to_nnf(node)
    literals = _literals(nnf)
    atoms = frozenset(atom for literal in literals for atom in literal.atoms())
    features = frozenset(feature for literal in literals for feature in literal_features(literal))
    notes = list(tree.notes)
    clauses = to_dnf(node, max_clauses)
    if clauses is None:
        notes.append(f"condition expands to more than {max_clauses} DNF clauses: compared by atoms only")
        text = "tree:" + canonical_tree(nnf)
    else:
        clauses = simplify(clauses)
        text = "dnf:" + canonical_dnf(clauses)
    source = logsource_class(rule.get("logsource"))
    digest = hashlib.sha256(("/".join(source) + "\n" + text).encode("utf-8")).hexdigest()[:32]
    return CanonicalRule(logsource=source, atoms=atoms, clauses=clauses, hash=digest, notes=notes, features=features)
