"""The similarity index: an inverted index from canonical atoms to corpus rules, persisted as JSON.

``SimilarityIndex.build(rules_dir)`` canonicalises every corpus rule; ``save(path)`` writes one JSON file
(format name and version, normalisation version, corpus path/commit/URL, atoms, rules with their atom ids
and DNF clauses); ``load(path)`` reads it back and rebuilds the postings in memory. ``similar(rule, top_k)``
scores only the rules that share at least one atom with the rule (postings walk), within compatible
log-source classes, then computes the DNF relation for the top k. ``similar_by_scan`` does the same by
scanning every rule — the baseline of ``benchmarks/similarity.py`` and a cross-check in the tests.
"""

from __future__ import annotations

import heapq
import json
import math
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from ctistudio.sigma.corpus import CorpusRule, Progress, SkippedFile, load_corpus
from ctistudio.sigma.errors import SigmaIndexInvalid, SigmaIndexMissing, SigmaRuleUnreadable
from ctistudio.sigma.rule_yaml import error_message, load_documents
from ctistudio.sigma.similarity.atoms import FEATURE_PREFIX
from ctistudio.sigma.similarity.canonical import NORMALISATION_VERSION, CanonicalRule, RuleNotComparable, canonicalize
from ctistudio.sigma.similarity.dnf import MAX_CLAUSES
from ctistudio.sigma.similarity.embeddings import RuleEmbeddings, SemanticMatch, embedding_text
from ctistudio.sigma.similarity.scoring import (
    FEATURE_WEIGHT,
    NEGATED_WEIGHT,
    AtomImplication,
    IdClause,
    Match,
    SimilarityResult,
    match_verdict,
    overall_verdict,
    relation,
)

FORMAT = "ctistudio-sigma-similarity"
FORMAT_VERSION = 1
INDEX_FILENAME = "similarity-index.json"
EMBEDDINGS_FILENAME = "similarity-embeddings.json"


class IndexInfo(BaseModel):
    """Where an index came from and how it was built."""

    format: str = FORMAT
    version: int = FORMAT_VERSION
    normalisation: int = NORMALISATION_VERSION
    built_at: str
    build_seconds: float
    corpus_path: str
    corpus_commit: str | None = None
    corpus_url: str | None = None
    rules: int
    atoms: int
    max_clauses: int = MAX_CLAUSES
    skipped: list[dict[str, str]] = Field(default_factory=list)


class IndexedRule(BaseModel):
    rule_id: str | None
    title: str
    description: str | None = None
    path: str
    level: str | None = None
    status: str | None = None
    logsource: tuple[str, str, str]
    hash: str
    atoms: list[int]
    features: list[int] = Field(default_factory=list)
    clauses: list[list[list[int]]] | None  # None: DNF over the cap


def _to_text(value: Any) -> str | None:
    return None if value is None else str(value)


def parse_rule_text(rule: str | Mapping[str, Any]) -> Mapping[str, Any]:
    """A rule given as YAML text or mapping → mapping (raises SigmaRuleUnreadable)."""
    if isinstance(rule, Mapping):
        return rule
    try:
        documents = [d for d in load_documents(rule) if d is not None]
    except yaml.YAMLError as exc:
        raise SigmaRuleUnreadable(
            f"the rule is not valid YAML: {error_message(exc)}", fix="Run `ctistudio sigma validate RULE.yml`."
        ) from exc
    if len(documents) != 1 or not isinstance(documents[0], Mapping):
        raise SigmaRuleUnreadable("expected exactly one Sigma rule (a YAML mapping)", fix="Put one rule per file.")
    return documents[0]


class SimilarityIndex:
    """Atoms → rules postings over a corpus, with per-rule DNFs for the logical relation."""

    def __init__(self, info: IndexInfo, atoms: list[str], rules: list[IndexedRule]) -> None:
        self.info = info
        self.atoms = atoms
        self.rules = rules
        self.atom_ids = {atom: i for i, atom in enumerate(atoms)}
        postings: list[list[int]] = [[] for _ in atoms]
        for index, rule in enumerate(rules):
            for term in (*rule.atoms, *rule.features):
                postings[term].append(index)
        self.postings = postings
        n = max(len(rules), 1)
        self.unseen_weight = math.log(1 + n)
        self.is_feature = [atom.startswith(FEATURE_PREFIX) for atom in atoms]
        self.weights = [self.unseen_weight * term_factor(atom) for atom in atoms]
        for term, rule_list in enumerate(postings):
            if rule_list:
                self.weights[term] = math.log(1 + n / len(rule_list)) * term_factor(atoms[term])
        self.rule_weights = [sum(self.weights[a] for a in (*rule.atoms, *rule.features)) for rule in rules]
        self._classes = sorted({rule.logsource for rule in rules})
        self._clause_cache: dict[int, list[IdClause] | None] = {}
        self._skipped: list[SkippedFile] = []  # rules build() could not canonicalise
        self.embeddings: RuleEmbeddings | None = None
        self.embeddings_note: str | None = None

    # -- building and persistence --------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        rules_dir: Path,
        *,
        progress: Progress | None = None,
        corpus_url: str | None = None,
        max_clauses: int = MAX_CLAUSES,
    ) -> SimilarityIndex:
        """Read and canonicalise every rule below ``rules_dir`` (``progress(done, total)`` per file)."""
        started = time.perf_counter()
        corpus = load_corpus(rules_dir, progress)
        index = cls.from_rules(corpus.rules, corpus_path=str(corpus.root), max_clauses=max_clauses)
        index.info.corpus_commit = corpus.commit
        index.info.corpus_url = corpus_url
        index.info.skipped = [{"path": s.path, "reason": s.reason} for s in [*corpus.skipped, *index._skipped]]
        index.info.build_seconds = round(time.perf_counter() - started, 3)
        return index

    @classmethod
    def from_rules(
        cls, rules: Iterable[CorpusRule], *, corpus_path: str = "", max_clauses: int = MAX_CLAUSES
    ) -> SimilarityIndex:
        """An index over already-parsed rules (the building block of :meth:`build`)."""
        atom_ids: dict[str, int] = {}
        indexed: list[IndexedRule] = []
        skipped: list[SkippedFile] = []
        for item in rules:
            try:
                canonical = canonicalize(item.rule, max_clauses)
            except RuleNotComparable as exc:
                skipped.append(SkippedFile(item.path, str(exc)))
                continue
            indexed.append(_indexed(item, canonical, atom_ids))
        atoms = list(atom_ids)
        info = IndexInfo(
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            build_seconds=0.0,
            corpus_path=corpus_path,
            rules=len(indexed),
            atoms=len(atoms),
            max_clauses=max_clauses,
        )
        index = cls(info, atoms, indexed)
        index._skipped = skipped
        return index

    def save(self, path: Path) -> Path:
        """Write the index as JSON (atomically: a temporary file renamed over the old one)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "info": self.info.model_dump(mode="json"),
            "atoms": self.atoms,
            "rules": [rule.model_dump(mode="json") for rule in self.rules],
        }
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        tmp.replace(path)
        vectors = path.with_name(EMBEDDINGS_FILENAME)
        if self.embeddings is not None:
            self.embeddings.save(vectors)
        else:
            vectors.unlink(missing_ok=True)  # vectors of an earlier build would not fit this one
        return path

    def attach_embeddings(self, embeddings: RuleEmbeddings) -> None:
        """Use ``embeddings`` (made by :func:`~.embeddings.embed_index` for this index) for semantic matches."""
        if embeddings.rows != len(self.rules) or embeddings.index_built_at != self.info.built_at:
            raise SigmaIndexInvalid(
                f"the embeddings ({embeddings.rows} rows, index of {embeddings.index_built_at}) were not made for "
                f"this index ({len(self.rules)} rules, built {self.info.built_at})",
                fix="Rebuild both: ctistudio sigma index --rules DIR.",
            )
        self.embeddings = embeddings
        self.embeddings_note = None

    @classmethod
    def load(cls, path: Path) -> SimilarityIndex:
        """Read an index written by :meth:`save` (raises SigmaIndexMissing / SigmaIndexInvalid)."""
        command = "ctistudio sigma index --rules DIR (or --git https://github.com/SigmaHQ/sigma)"
        rebuild = f"Rebuild it: {command}."
        if not path.is_file():
            raise SigmaIndexMissing(f"no Sigma similarity index at {path}", fix=f"Build it: {command}.")
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            info = IndexInfo.model_validate(payload["info"])
        except (OSError, ValueError, KeyError, TypeError, ValidationError) as exc:
            raise SigmaIndexInvalid(f"the similarity index {path} is unreadable: {exc}", fix=rebuild) from exc
        expected = (FORMAT, FORMAT_VERSION, NORMALISATION_VERSION)
        if (info.format, info.version, info.normalisation) != expected:
            raise SigmaIndexInvalid(
                f"the similarity index {path} has format {info.format} v{info.version} (normalisation "
                f"{info.normalisation}); this version of ctistudio reads v{FORMAT_VERSION} "
                f"(normalisation {NORMALISATION_VERSION})",
                fix=rebuild,
            )
        try:
            rules = [IndexedRule.model_validate(r) for r in payload["rules"]]
            atoms = [str(a) for a in payload["atoms"]]
        except (KeyError, TypeError, ValidationError) as exc:
            raise SigmaIndexInvalid(f"the similarity index {path} is corrupt: {exc}", fix=rebuild) from exc
        index = cls(info, atoms, rules)
        vectors = path.with_name(EMBEDDINGS_FILENAME)
        if vectors.is_file():
            try:
                index.attach_embeddings(RuleEmbeddings.load(vectors))
            except SigmaIndexInvalid as exc:  # the atom index works without them; say why they are unused
                index.embeddings_note = f"rule embeddings not used: {exc.message}"
        return index

    # -- querying -------------------------------------------------------------------------------------
    def similar(
        self, rule: str | Mapping[str, Any], top_k: int = 5, *, query_vector: list[float] | None = None
    ) -> SimilarityResult:
        """The verdict and top-k corpus matches of one rule (YAML text or mapping), via the postings.

        With ``query_vector`` (from :func:`~.embeddings.embed_rule`) and stored rule embeddings, the result
        also lists the top-k nearest rules by embedding in ``semantic``.
        """
        query = self._canonical_query(rule)
        terms = self._query_terms(query)
        overlap: dict[int, list[float]] = {}
        for term in terms:
            if term >= len(self.atoms):
                continue
            weight, exact = self.weights[term], 0.0 if self.is_feature[term] else 1.0
            for rule_index in self.postings[term]:
                entry = overlap.get(rule_index)
                if entry is None:
                    overlap[rule_index] = [weight, exact]
                else:
                    entry[0] += weight
                    entry[1] += exact
        result = self._rank(query, terms, overlap, top_k)
        if query_vector is not None and self.embeddings is not None:
            result.embedding_model = self.embeddings.model
            result.semantic = [
                SemanticMatch(
                    path=self.rules[row].path,
                    title=self.rules[row].title,
                    logsource="/".join(p or "-" for p in self.rules[row].logsource),
                    cosine=cosine,
                )
                for row, cosine in self.embeddings.nearest(query_vector, top_k)
            ]
        return result

    def query_embedding_text(self, rule: str | Mapping[str, Any]) -> str:
        """The text to embed for a rule, with the recipe used for the corpus."""
        parsed = parse_rule_text(rule)
        query = self._canonical_query(parsed)
        terms = self._query_terms(query)
        ranked = sorted(
            (t for t in terms.items() if not t[1].startswith(FEATURE_PREFIX)), key=lambda pair: -self._weight(*pair)
        )
        return embedding_text(
            str(parsed.get("title") or ""),
            _to_text(parsed.get("description")),
            query.logsource_key,
            [atom for _, atom in ranked],
        )

    def similar_by_scan(self, rule: str | Mapping[str, Any], top_k: int = 5) -> SimilarityResult:
        """Same answer as :meth:`similar`, found by scanning every corpus rule (baseline, cross-check)."""
        query = self._canonical_query(rule)
        terms = self._query_terms(query)
        term_set = set(terms)
        overlap: dict[int, list[float]] = {}
        for rule_index, indexed in enumerate(self.rules):
            shared_atoms = term_set.intersection(indexed.atoms)
            shared = shared_atoms | term_set.intersection(indexed.features)
            if shared:
                overlap[rule_index] = [sum(self.weights[a] for a in sorted(shared)), float(len(shared_atoms))]
        return self._rank(query, terms, overlap, top_k)

    def _canonical_query(self, rule: str | Mapping[str, Any]) -> CanonicalRule:
        try:
            return canonicalize(parse_rule_text(rule), self.info.max_clauses)
        except RuleNotComparable as exc:
            raise SigmaRuleUnreadable(
                f"the rule cannot be compared: {exc}", fix="Run `ctistudio sigma validate RULE.yml`."
            ) from exc

    def _query_terms(self, query: CanonicalRule) -> dict[int, str]:
        """Term id → text for the query's atoms and features; terms the corpus never uses get fresh ids."""
        out, fresh = {}, len(self.atoms)
        for term in sorted(query.atoms | query.features):
            known = self.atom_ids.get(term)
            if known is None:
                known, fresh = fresh, fresh + 1
            out[known] = term
        return out

    def _weight(self, term_id: int, term: str) -> float:
        if term_id < len(self.weights):
            return self.weights[term_id]
        return self.unseen_weight * term_factor(term)

    def _term(self, term_id: int, query_terms: dict[int, str]) -> str:
        return self.atoms[term_id] if term_id < len(self.atoms) else query_terms[term_id]

    def _compatible(self, query: tuple[str, str, str]) -> set[tuple[str, str, str]]:
        product, category, service = query
        return {
            c
            for c in self._classes
            if c[1] == category and c[2] == service and (c[0] == product or not c[0] or not product)
        }

    def _rank(
        self, query: CanonicalRule, terms: dict[int, str], overlap: dict[int, list[float]], top_k: int
    ) -> SimilarityResult:
        query_weight = sum(self._weight(i, t) for i, t in terms.items()) or 1e-9
        classes = self._compatible(query.logsource)
        scored = []
        for rule_index, (shared_weight, shared_count) in overlap.items():
            rule = self.rules[rule_index]
            if rule.logsource not in classes:
                continue
            union = query_weight + self.rule_weights[rule_index] - shared_weight
            score = shared_weight / union if union > 0 else 0.0
            scored.append((score, shared_count, rule_index, shared_weight))
        best = heapq.nlargest(top_k, scored, key=lambda s: (round(s[0], 9), s[1], -s[2]))
        ids = {term: i for i, term in terms.items()}
        query_clauses = None
        if query.clauses is not None:
            query_clauses = [
                frozenset(frozenset(ids[a] for a in lit.atoms()) for lit in clause) for clause in query.clauses
            ]
        implies = AtomImplication(lambda i: self._term(i, terms))
        matches = [self._match(query, query_clauses, terms, query_weight, s, i, w, implies) for s, _, i, w in best]
        verdict, reason = overall_verdict(matches)
        return SimilarityResult(
            verdict=verdict,
            reason=reason,
            matches=matches,
            logsource=query.logsource_key,
            hash=query.hash,
            atoms=len(query.atoms),
            dnf_clauses=None if query.clauses is None else len(query.clauses),
            notes=query.notes,
        )

    def _rule_clauses(self, rule_index: int) -> list[IdClause] | None:
        if rule_index not in self._clause_cache:
            raw = self.rules[rule_index].clauses
            self._clause_cache[rule_index] = (
                None if raw is None else [frozenset(frozenset(lit) for lit in clause) for clause in raw]
            )
        return self._clause_cache[rule_index]

    def _match(
        self,
        query: CanonicalRule,
        query_clauses: list[IdClause] | None,
        terms: dict[int, str],
        query_weight: float,
        score: float,
        rule_index: int,
        shared_weight: float,
        implies: AtomImplication,
    ) -> Match:
        rule = self.rules[rule_index]
        same_hash = rule.hash == query.hash
        rel = "equivalent" if same_hash else relation(query_clauses, self._rule_clauses(rule_index), implies)
        exact = {i for i, t in terms.items() if not t.startswith(FEATURE_PREFIX)}
        shared = exact.intersection(rule.atoms)
        near = set(terms).intersection(rule.features)
        by_weight = sorted(shared, key=lambda a: (-self.weights[a], self.atoms[a]))
        by_weight += sorted(near, key=lambda a: (-self.weights[a], self.atoms[a]))
        union_count = len(exact) + len(rule.atoms) - len(shared)
        candidate_weight = self.rule_weights[rule_index]
        q_in_c = shared_weight / query_weight
        c_in_q = shared_weight / candidate_weight if candidate_weight else 0.0
        return Match(
            rule_id=rule.rule_id,
            title=rule.title,
            path=rule.path,
            level=rule.level,
            logsource="/".join(p or "-" for p in rule.logsource),
            score=round(score, 4),
            jaccard=round(len(shared) / union_count, 4) if union_count else 0.0,
            query_in_candidate=round(q_in_c, 4),
            candidate_in_query=round(c_in_q, 4),
            relation=rel,
            same_hash=same_hash,
            verdict=match_verdict(score, rel, same_hash, max(q_in_c, c_in_q)),
            shared_atoms=[self.atoms[a] for a in by_weight[:8]],
        )


def term_factor(term: str) -> float:
    """Weight factor of a term: features count :data:`FEATURE_WEIGHT`, negated atoms :data:`NEGATED_WEIGHT`."""
    if term.startswith(FEATURE_PREFIX):
        return FEATURE_WEIGHT
    return NEGATED_WEIGHT if term.startswith("!") else 1.0


def _indexed(item: CorpusRule, canonical: CanonicalRule, atom_ids: dict[str, int]) -> IndexedRule:
    def intern(atom: str) -> int:
        found = atom_ids.get(atom)
        if found is None:
            found = atom_ids[atom] = len(atom_ids)
        return found

    atoms = sorted(intern(a) for a in canonical.atoms)
    features = sorted(intern(f) for f in canonical.features)
    clauses = None
    if canonical.clauses is not None:
        clauses = [
            sorted(sorted(intern(a) for a in literal.atoms()) for literal in clause) for clause in canonical.clauses
        ]
    rule = item.rule
    return IndexedRule(
        rule_id=_to_text(rule.get("id")),
        title=str(rule.get("title") or item.path),
        description=(_to_text(rule.get("description")) or "")[:400] or None,
        path=item.path,
        level=_to_text(rule.get("level")),
        status=_to_text(rule.get("status")),
        logsource=canonical.logsource,
        hash=canonical.hash,
        atoms=atoms,
        features=features,
        clauses=clauses,
    )
