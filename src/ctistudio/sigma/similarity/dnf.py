"""Disjunctive normal form of a detection tree, with a cap, and its canonical simplification.

The tree's leaves are :class:`~ctistudio.sigma.similarity.atoms.Literal` field tests. Negation is pushed
down to the leaves first (De Morgan; ``not`` of a value list becomes an AND of negated single values), then
ANDs are multiplied out. A literal's value list stays one literal (an OR of values) instead of being
multiplied out: that is equivalent for subsumption and keeps a 20-value list × 10-value list at one clause
instead of 200.

The expansion is capped at :data:`MAX_CLAUSES` clauses. A rule whose DNF would be larger keeps no DNF
(``truncated``): its atoms still count for scoring, its canonical hash is taken over the normalised tree,
and its logical relation to other rules is reported as ``overlap`` at best.

Canonical form (for exact-duplicate hashing): clauses that differ only in the values of one positive literal
are merged (``(A=a ∧ R) ∨ (A=b ∧ R)`` → ``A∈{a,b} ∧ R``) and clauses implied by another clause are dropped
(absorption), until nothing changes; then clauses and literals are sorted.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ctistudio.sigma.similarity.atoms import Literal

MAX_CLAUSES = 128

Clause = frozenset[Literal]
Node = tuple[Any, ...]


class DnfTooLarge(Exception):
    """The expansion would exceed the clause cap."""


def to_nnf(node: Node, negate: bool = False) -> Node:
    """Negation normal form: ``not`` only on literals, expressed through ``Literal.negated``."""
    kind = node[0]
    if kind == "lit":
        literal: Literal = node[1]
        if not negate:
            return node
        if literal.negated:  # not not a = a
            return ("lit", Literal(False, literal.key, literal.values))
        negated = [("lit", Literal(True, literal.key, frozenset([v]))) for v in sorted(literal.values)]
        if len(negated) == 1:
            return negated[0]
        return ("and", tuple(negated)) if negated else ("or", ())  # not (empty or) = true
    if kind == "not":
        return to_nnf(node[1], not negate)
    children = tuple(to_nnf(child, negate) for child in node[1])
    if negate:
        kind = "or" if kind == "and" else "and"
    return (kind, children)


def _dnf(node: Node, cap: int) -> list[Clause]:
    kind = node[0]
    if kind == "lit":
        return [frozenset([node[1]])]
    if kind == "or":
        out: list[Clause] = []
        seen: set[Clause] = set()
        for child in node[1]:
            for clause in _dnf(child, cap):
                if clause not in seen:
                    seen.add(clause)
                    out.append(clause)
        if len(out) > cap:
            raise DnfTooLarge
        return out
    # and: multiply out
    product: list[Clause] = [frozenset()]
    for child in node[1]:
        options = _dnf(child, cap)
        if len(product) * len(options) > cap:
            raise DnfTooLarge
        product = [a | b for a in product for b in options]
    return list(dict.fromkeys(product))


def to_dnf(node: Node, cap: int = MAX_CLAUSES) -> list[Clause] | None:
    """The DNF clauses of a tree, or None when it has more than ``cap`` clauses."""
    try:
        return _dnf(to_nnf(node), cap)
    except DnfTooLarge:
        return None


def literal_implies(a: Literal, b: Literal) -> bool:
    """a ⇒ b for field tests: same key and sign; a's values within b's (negated: the same value)."""
    if a.key != b.key or a.negated != b.negated:
        return False
    return a.values == b.values if a.negated else a.values <= b.values


def clause_implies(a: Clause, b: Clause) -> bool:
    """a ⇒ b: every literal of b is implied by some literal of a."""
    return all(any(literal_implies(x, y) for x in a) for y in b)


def _merge_once(clauses: list[Clause]) -> list[Clause] | None:
    groups: dict[tuple[Clause, str], list[tuple[Clause, Literal]]] = defaultdict(list)
    for clause in clauses:
        for literal in clause:
            if not literal.negated:
                groups[(clause - {literal}, literal.key)].append((clause, literal))
    for (rest, key), members in groups.items():
        if len(members) > 1:
            merged_values = frozenset().union(*(lit.values for _, lit in members))
            merged = rest | {Literal(False, key, merged_values)}
            gone = {clause for clause, _ in members}
            return [c for c in clauses if c not in gone] + [merged]
    return None


def _reduce_clause(clause: Clause) -> Clause:
    """Drop literals implied by another literal of the same clause (``A=a ∧ A∈{a,b}`` → ``A=a``)."""
    ordered = sorted(clause, key=lambda lit: (len(lit.values), lit.render()))
    kept: list[Literal] = []
    for literal in ordered:
        if not any(literal_implies(other, literal) for other in kept):
            kept.append(literal)
    return frozenset(kept)


def _absorb(clauses: list[Clause]) -> list[Clause]:
    """Drop every clause that implies another one (it adds no match); of equivalent clauses keep the first."""
    unique = list(dict.fromkeys(_reduce_clause(c) for c in clauses))
    kept = []
    for i, clause in enumerate(unique):
        absorbed = any(
            j != i and clause_implies(clause, other) and (j < i or not clause_implies(other, clause))
            for j, other in enumerate(unique)
        )
        if not absorbed:
            kept.append(clause)
    return kept


def simplify(clauses: list[Clause]) -> list[Clause]:
    """Merge clauses that differ in one literal's values and drop absorbed clauses, until stable."""
    current = _absorb(clauses)
    for _ in range(4 * len(current) + 4):
        merged = _merge_once(current)
        if merged is None:
            break
        current = _absorb(merged)
    return current


def canonical_dnf(clauses: list[Clause]) -> str:
    """Sorted text of simplified clauses (one line per clause, literals joined by ' & ')."""
    return "\n".join(sorted(" & ".join(sorted(lit.render() for lit in clause)) for clause in clauses))


def canonical_tree(node: Node) -> str:
    """Order-independent text of a (NNF) tree: used when the DNF is too large."""
    kind = node[0]
    if kind == "lit":
        return node[1].render()
    if kind == "not":
        return f"not({canonical_tree(node[1])})"
    parts = sorted({canonical_tree(child) for child in _flatten(kind, node[1])})
    return f"{kind}(" + ";".join(parts) + ")"


def _flatten(kind: str, children: tuple[Node, ...]) -> list[Node]:
    out: list[Node] = []
    for child in children:
        if child[0] == kind:
            out.extend(_flatten(kind, child[1]))
        else:
            out.append(child)
    return out
