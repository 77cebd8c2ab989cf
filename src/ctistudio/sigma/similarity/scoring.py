"""Scores, logical relations and the verdict of a rule against its nearest corpus rules.

Terms: a rule's exact atoms (``field|modifiers|value``) plus its near-match features (``~field|modifiers|text``
for each literal run of a value, so ``*urlcache *`` and ``*urlcache*`` share ``~commandline||urlcache``).

- **score**: IDF-weighted Jaccard of the two term sets, Σ w(shared) / Σ w(union), with
  w(term) = ln(1 + N / df(term)) over the N corpus rules (a term the corpus never uses weighs ln(1 + N)),
  features at :data:`FEATURE_WEIGHT` and negated atoms (filters) at :data:`NEGATED_WEIGHT` of that — so a
  shared ``Image|endswith: '\\powershell.exe'`` counts less than a shared rare command-line fragment.
- **jaccard**: the plain, unweighted Jaccard of the exact atom sets.
- **query_in_candidate** / **candidate_in_query**: weighted containment of one term set in the other.
- **relation** (from the DNFs, see :mod:`ctistudio.sigma.similarity.dnf`, with wildcard-aware implication:
  ``*\\certutil.exe`` implies ``*certutil.exe``, ``*urlcache *`` implies ``*urlcache*``): ``equivalent``
  (each implies the other), ``subset`` (whatever the rule matches, the corpus rule matches too),
  ``superset`` (the reverse), ``overlap`` (no implication either way, or a DNF over the cap).

Verdict of a rule, from its best match (thresholds below, documented in docs/sigma.md):

- ``duplicate``: same canonical hash, or ``equivalent``, or score ≥ :data:`DUPLICATE_SCORE`;
- ``similar``: score ≥ :data:`SIMILAR_SCORE`; or one rule's terms are mostly inside the other's
  (containment ≥ :data:`CONTAINMENT_SIMILAR`); or ``subset``/``superset`` with score ≥ :data:`CONTAINED_SCORE`;
- ``novel``: anything else (including no candidate in the same log-source class).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field

from ctistudio.sigma.similarity.atoms import value_implies
from ctistudio.sigma.similarity.embeddings import SemanticMatch

DUPLICATE_SCORE = 0.90
SIMILAR_SCORE = 0.50
CONTAINED_SCORE = 0.25
CONTAINMENT_SIMILAR = 0.65
NEGATED_WEIGHT = 0.5
FEATURE_WEIGHT = 0.5

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
        default=None, description="nearest corpus rules by embedding (only when a query vector was given)"
    )
    embedding_model: str | None = None


class AtomImplication:
    """a ⇒ b for two atoms (by id): same sign, field and modifiers, and a's pattern within b's
    (``*urlcache *`` ⇒ ``*urlcache*``; see :func:`~.atoms.value_implies`); negated atoms only when equal."""

    def __init__(self, text_of: Callable[[int], str]) -> None:
        self._text_of = text_of
        self._cache: dict[tuple[int, int], bool] = {}

    def __call__(self, a: int, b: int) -> bool:
        if a == b:
            return True
        key = (a, b)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._implies(self._text_of(a), self._text_of(b))
        return found

    @staticmethod
    def _implies(a: str, b: str) -> bool:
        if a.startswith("!") or b.startswith("!"):
            return False
        key_a, _, value_a = a.rpartition("|")
        key_b, _, value_b = b.rpartition("|")
        return key_a == key_b and "|re" not in key_a and value_implies(value_a, value_b)


def literal_implies(a: frozenset[int], b: frozenset[int], implies: AtomImplication) -> bool:
    """Literals as atom-id sets (an OR of values): a ⇒ b when each of a's atoms implies one of b's."""
    return a <= b or all(any(implies(x, y) for y in b) for x in a)


def clause_implies(a: IdClause, b: IdClause, implies: AtomImplication) -> bool:
    return all(any(literal_implies(x, y, implies) for x in a) for y in b)


def rule_implies(a: list[IdClause], b: list[IdClause], implies: AtomImplication) -> bool:
    """Every clause of a implies some clause of b, i.e. whatever a matches, b matches."""
    return all(any(clause_implies(ca, cb, implies) for cb in b) for ca in a)


def relation(query: list[IdClause] | None, candidate: list[IdClause] | None, implies: AtomImplication) -> Relation:
    if query is None or candidate is None:
        return "overlap"
    forward = rule_implies(query, candidate, implies)
    backward = rule_implies(candidate, query, implies)
    if forward and backward:
        return "equivalent"
    if forward:
        return "subset"
    if backward:
        return "superset"
    return "overlap"


def match_verdict(score: float, rel: Relation, same_hash: bool, containment: float = 0.0) -> Verdict:
    """Verdict of one match; ``containment`` is the larger of the two weighted containments."""
    if same_hash or rel == "equivalent" or score >= DUPLICATE_SCORE:
        return "duplicate"
    if score >= SIMILAR_SCORE or containment >= CONTAINMENT_SIMILAR:
        return "similar"
    if rel in ("subset", "superset") and score >= CONTAINED_SCORE:
        return "similar"
    return "novel"


def _why(match: Match) -> str:
    if match.same_hash:
        return "same canonical detection"
    if match.relation == "equivalent":
        return "logically equivalent detection"
    if match.score >= SIMILAR_SCORE:
        return f"score {match.score:.2f}, {match.relation}"
    if match.query_in_candidate >= CONTAINMENT_SIMILAR:
        return f"{match.query_in_candidate:.0%} of this rule's weighted terms are in it, score {match.score:.2f}"
    if match.candidate_in_query >= CONTAINMENT_SIMILAR:
        return f"{match.candidate_in_query:.0%} of its weighted terms are in this rule, score {match.score:.2f}"
    return f"{match.relation}, score {match.score:.2f}"


def overall_verdict(matches: list[Match]) -> tuple[Verdict, str]:
    """The rule's verdict and a one-line reason, from its matches."""
    for wanted, word in (("duplicate", "duplicate of"), ("similar", "similar to")):
        for match in matches:
            if match.verdict == wanted:
                return match.verdict, f"{word} {match.path} ({_why(match)})"
    if not matches:
        return "novel", "no corpus rule of the same log-source class shares an atom"
    best = matches[0]
    return "novel", f"closest is {best.path} ({_why(best)})"
