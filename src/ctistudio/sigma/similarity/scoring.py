"""Scores, logical relations and the verdict of a rule against its nearest corpus rules.

- **score**: IDF-weighted Jaccard of the two atom sets, Σ w(shared) / Σ w(union), with
  w(atom) = ln(1 + N / df(atom)) over the N corpus rules (an atom the corpus never uses weighs ln(1 + N)),
  and negated atoms (filters) at :data:`NEGATED_WEIGHT` of that, so that a shared ``Image|endswith:
  '\\powershell.exe'`` counts less than a shared rare command-line fragment, and filters less than selections.
- **jaccard**: the plain, unweighted Jaccard of the atom sets; **query_in_candidate** /
  **candidate_in_query**: weighted containment of one atom set in the other.
- **relation** (from the DNFs, see :mod:`ctistudio.sigma.similarity.dnf`): ``equivalent`` (each implies the
  other), ``subset`` (everything the rule matches, the corpus rule matches too), ``superset`` (the reverse),
  ``overlap`` (shared atoms, no implication either way, or a DNF over the cap).

Verdict of a rule, from its best match (thresholds below, documented in docs/readme/sigma.md):

- ``duplicate``: same canonical hash, or ``equivalent``, or score ≥ :data:`DUPLICATE_SCORE`;
- ``similar``: score ≥ :data:`SIMILAR_SCORE`, or ``subset``/``superset`` with score ≥ :data:`CONTAINED_SCORE`;
- ``novel``: anything else (including no candidate in the same log-source class).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ctistudio.sigma.similarity.embeddings import SemanticMatch

DUPLICATE_SCORE = 0.90
SIMILAR_SCORE = 0.50
CONTAINED_SCORE = 0.25
NEGATED_WEIGHT = 0.5

Verdict = Literal["duplicate", "similar", "novel"]
Relation = Literal["equivalent", "subset", "superset", "overlap"]

IdClause = frozenset[frozenset[int]]


class Match(BaseModel):
    """One corpus rule close to the rule being checked."""

    rule_id: str | None
    title: str
    path: str
    level: str | None = None
    logsource: str
    score: float = Field(description="IDF-weighted Jaccard of the atom sets, 0..1")
    jaccard: float = Field(description="unweighted Jaccard of the atom sets, 0..1")
    query_in_candidate: float = Field(description="weighted share of the rule's atoms found in the corpus rule")
    candidate_in_query: float = Field(description="weighted share of the corpus rule's atoms found in the rule")
    relation: Relation
    same_hash: bool
    verdict: Verdict
    shared_atoms: list[str] = Field(default_factory=list, description="up to 8 shared atoms, rarest first")


class SimilarityResult(BaseModel):
    """The verdict for one rule and its top-k corpus matches, best first."""

    verdict: Verdict
    reason: str
    matches: list[Match]
    logsource: str
    hash: str
    atoms: int
    dnf_clauses: int | None = Field(description="clauses of the simplified DNF; None when over the cap")
    notes: list[str] = Field(default_factory=list)
    semantic: list[SemanticMatch] | None = Field(
        None, description="nearest corpus rules by embedding (only when a query vector was given)"
    )
    embedding_model: str | None = None


def literal_implies(a: frozenset[int], b: frozenset[int]) -> bool:
    """Literals as atom-id sets: a ⇒ b when a's values are among b's (atoms carry field, modifiers, sign)."""
    return a <= b


def clause_implies(a: IdClause, b: IdClause) -> bool:
    return all(any(x <= y for x in a) for y in b)


def rule_implies(a: list[IdClause], b: list[IdClause]) -> bool:
    """Every clause of a implies some clause of b, i.e. whatever a matches, b matches."""
    return all(any(clause_implies(ca, cb) for cb in b) for ca in a)


def relation(query: list[IdClause] | None, candidate: list[IdClause] | None) -> Relation:
    if query is None or candidate is None:
        return "overlap"
    forward = rule_implies(query, candidate)
    backward = rule_implies(candidate, query)
    if forward and backward:
        return "equivalent"
    if forward:
        return "subset"
    if backward:
        return "superset"
    return "overlap"


def match_verdict(score: float, rel: Relation, same_hash: bool) -> Verdict:
    if same_hash or rel == "equivalent" or score >= DUPLICATE_SCORE:
        return "duplicate"
    if score >= SIMILAR_SCORE or (rel in ("subset", "superset") and score >= CONTAINED_SCORE):
        return "similar"
    return "novel"


def overall_verdict(matches: list[Match]) -> tuple[Verdict, str]:
    """The rule's verdict and a one-line reason, from its matches."""
    for wanted in ("duplicate", "similar"):
        for match in matches:
            if match.verdict == wanted:
                why = "same canonical detection" if match.same_hash else f"{match.relation}, score {match.score:.2f}"
                return match.verdict, f"{wanted} of {match.path} ({why})"
    if not matches:
        return "novel", "no corpus rule of the same log-source class shares an atom"
    best = matches[0]
    return "novel", f"closest is {best.path} with score {best.score:.2f} ({best.relation})"
