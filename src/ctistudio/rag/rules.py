"""Sigma rules as the second searchable collection: SigmaHQ (a rules folder) and the generated rules.

Each rule becomes a short document — title, description, tags, log source and the detection's values —
that is embedded once and searched by meaning and by keyword. SigmaHQ rules are read from
``CTISTUDIO_SIGMA_RULES_DIR`` (see :mod:`ctistudio.sigma.corpus` for which files count); generated rules
come from the store (rejected ones are left out).

Parsing thousands of YAML files and embedding them takes a while, so both are cached under
``CTISTUDIO_DATA_DIR/rag/``: document summaries by file (path, size, mtime) and vectors by the digest of
the document text and the embedding model. A later run only reads and embeds what changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ctistudio.embeddings import EmbeddingModelMismatch
from ctistudio.safe_yaml import load_yaml
from ctistudio.sigma.rule_yaml import RULE_LIMITS
from ctistudio.store import Store
from ctistudio.store.rules import list_rules
from ctistudio.store.text_search import MemoryTextIndex

log = logging.getLogger(__name__)

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_DOC_CHARS = 1500  # the embedder reads ~256 tokens; the title and description come first
Embed = Callable[[list[str]], Any]  # async: texts -> (matrix, model key)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RuleDoc:
    """One searchable rule. ``key`` is unique across both kinds (``sigmahq:<path>`` / ``generated:<id>``)."""

    key: str
    kind: str  # sigmahq | generated
    rule_id: str | None  # the rule's own ``id:`` (a UUID)
    title: str
    level: str | None
    product: str | None
    logsource: dict[str, Any]
    path: str | None  # SigmaHQ: path below the rules folder
    db_id: int | None  # generated: sigma_rules.id
    text: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:24]


def _values(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "condition":
                out.append(str(key).split("|")[0])
            _values(value, out)
    elif isinstance(node, list):
        for item in node:
            _values(item, out)
    elif node is not None:
        out.append(str(node))


def rule_document_text(rule: dict[str, Any]) -> str:
    """The text a rule is searched by: what it detects in words first, then the fields and values."""
    logsource = rule.get("logsource") or {}
    detection: list[str] = []
    _values(rule.get("detection") or {}, detection)
    parts = [
        str(rule.get("title") or ""),
        str(rule.get("description") or ""),
        " ".join(str(t) for t in rule.get("tags") or []),
        " ".join(f"{k}: {v}" for k, v in logsource.items() if isinstance(logsource, dict)),
        " ".join(detection),
    ]
    return "\n".join(p for p in parts if p.strip())[:MAX_DOC_CHARS]


def _doc_from_rule(rule: dict[str, Any], *, key: str, kind: str, path: str | None, db_id: int | None) -> RuleDoc:
    found = rule.get("logsource")
    logsource: dict[str, Any] = found if isinstance(found, dict) else {}
    return RuleDoc(
        key=key,
        kind=kind,
        rule_id=str(rule["id"]) if rule.get("id") else None,
        title=str(rule.get("title") or "(untitled rule)"),
        level=str(rule["level"]) if rule.get("level") else None,
        product=str(logsource.get("product")).lower() if logsource.get("product") else None,
        logsource=logsource,
        path=path,
        db_id=db_id,
        text=rule_document_text(rule),
    )


def sigmahq_documents(root: Path, cache_dir: Path) -> list[RuleDoc]:
    """Documents of every rule below ``root``, reading only files changed since the last call."""
    from ctistudio.sigma.corpus import rule_files  # the sigma tooling decides which files are rules

    cache_file = cache_dir / "sigmahq-documents.json"
    try:
        cached = json.loads(cache_file.read_text(encoding="utf-8")) if cache_file.is_file() else {}
    except (OSError, ValueError):
        cached = {}
    if cached.get("root") != str(root):
        cached = {}
    entries: dict[str, Any] = cached.get("files", {})
    fresh: dict[str, Any] = {}
    docs: list[RuleDoc] = []
    for path in rule_files(root):
        relative = path.relative_to(root).as_posix()
        stat = path.stat()
        stamp = [stat.st_size, stat.st_mtime_ns]
        entry = entries.get(relative)
        if entry is None or entry.get("stamp") != stamp:
            entry = {"stamp": stamp, "doc": _parse_rule_file(path, relative)}
        fresh[relative] = entry
        if entry["doc"] is not None:
            docs.append(RuleDoc(**entry["doc"]))
    if fresh != entries:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"root": str(root), "files": fresh}), encoding="utf-8")
        tmp.replace(cache_file)
    return docs


def _parse_rule_file(path: Path, relative: str) -> dict[str, Any] | None:
    try:
        rule = load_yaml(path.read_text(encoding="utf-8", errors="replace"), limits=RULE_LIMITS, loader=_Loader)
    except yaml.YAMLError as exc:
        log.info("skipping %s: not valid YAML (%s)", relative, exc)
        return None
    if not isinstance(rule, dict) or not rule.get("title") or not rule.get("detection"):
        return None
    return asdict(_doc_from_rule(rule, key=f"sigmahq:{relative}", kind="sigmahq", path=relative, db_id=None))


def generated_documents(store: Store, *, limit: int = 20000) -> list[RuleDoc]:
    """Documents of the generated rules that are not rejected."""
    docs = []
    with store.session() as session:
        for row in list_rules(session, queued_only=False, limit=limit):
            if row.review_state == "rejected":
                continue
            try:
                rule = load_yaml(row.yaml, limits=RULE_LIMITS, loader=_Loader)
            except yaml.YAMLError:
                rule = None
            if not isinstance(rule, dict):
                rule = {"title": row.title, "logsource": row.logsource, "level": row.level}
            rule.setdefault("id", row.rule_uuid)
            docs.append(_doc_from_rule(rule, key=f"generated:{row.id}", kind="generated", path=None, db_id=row.id))
    return docs


class VectorCache:
    """Rule vectors by document digest, for one embedding model, in ``<dir>/rule-vectors-<model>.npz``."""

    def __init__(self, cache_dir: Path, model_key: str) -> None:
        slug = hashlib.sha256(model_key.encode()).hexdigest()[:12]
        self.path = cache_dir / f"rule-vectors-{slug}.npz"
        self.model_key = model_key
        self.vectors: dict[str, np.ndarray] = {}
        if self.path.is_file():
            try:
                with np.load(self.path, allow_pickle=False) as data:
                    if str(data["model"]) == model_key:
                        self.vectors = dict(zip(data["digests"].tolist(), data["matrix"], strict=True))
            except (OSError, ValueError, KeyError) as exc:
                log.warning("ignoring the unreadable rule vector cache %s (%s)", self.path, exc)

    def save(self, keep: set[str]) -> None:
        digests = sorted(d for d in self.vectors if d in keep)
        if not digests:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        matrix = np.stack([self.vectors[d] for d in digests]).astype(np.float32)
        tmp = self.path.with_name(self.path.stem + ".tmp.npz")
        np.savez(tmp, model=np.array(self.model_key), digests=np.array(digests), matrix=matrix)
        tmp.replace(self.path)


@dataclass
class RuleCollection:
    """Rule documents with their vectors (rows of ``matrix``) and an in-memory keyword index."""

    docs: list[RuleDoc]
    matrix: np.ndarray
    model_key: str | None
    keywords: MemoryTextIndex
    has_vector: np.ndarray | None = None  # False for rules not embedded yet (keyword search only)

    @property
    def unembedded(self) -> int:
        return 0 if self.has_vector is None else int((~self.has_vector).sum())

    def search_vectors(
        self, vector: np.ndarray, *, limit: int, allowed: np.ndarray | None, min_similarity: float
    ) -> list[tuple[int, float]]:
        if not len(self.docs) or self.matrix.size == 0:  # nothing embedded (yet)
            return []
        scores = self.matrix @ np.asarray(vector, dtype=np.float32).reshape(-1)
        if self.has_vector is not None:
            scores = np.where(self.has_vector, scores, -np.inf)
        if allowed is not None:
            scores = np.where(allowed, scores, -np.inf)
        order = np.argsort(-scores, kind="stable")[:limit]
        return [(int(i), float(scores[i])) for i in order if scores[i] >= min_similarity]

    def search_keywords(self, query: str, *, limit: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        hits = self.keywords.search(query, limit=limit * 4 if allowed is not None else limit)
        if allowed is not None:
            hits = [(i, s) for i, s in hits if allowed[i]]
        return hits[:limit]

    def allowed_for_platform(self, platform: str | None) -> np.ndarray | None:
        """Rules whose log source product is ``platform`` (``cloud`` = any cloud product), or ``None``."""
        if not platform:
            return None
        wanted = platform.lower()
        clouds = {"aws", "azure", "gcp", "m365", "okta", "github", "google_workspace", "onelogin", "cloud"}
        return np.array(
            [(d.product or "") == wanted or (wanted == "cloud" and (d.product or "") in clouds) for d in self.docs],
            dtype=bool,
        )


async def build_rule_collection(
    docs: list[RuleDoc],
    embed: Embed,
    cache_dir: Path,
    *,
    model_key: str,
    progress: Progress | None = None,
    batch: int = 64,
    max_new: int | None = None,
) -> RuleCollection:
    """Embed ``docs`` with ``model_key``'s model (reusing cached vectors); index their text for keywords.

    With ``max_new``, at most that many uncached rules are embedded now; when more are missing (a fresh
    SigmaHQ folder: thousands of rules, minutes on a small CPU) none is, and those rules are searched by
    keywords only until ``ctistudio rag backfill`` embeds them.
    """
    keywords = MemoryTextIndex()
    keywords.add((i, d.text) for i, d in enumerate(docs))
    if not docs:
        return RuleCollection(docs, np.zeros((0, 0), dtype=np.float32), None, keywords)
    cache = VectorCache(cache_dir, model_key)
    missing = [d for d in docs if d.digest not in cache.vectors]
    if max_new is not None and len(missing) > max_new:
        log.info("%d Sigma rules are not embedded yet: keyword search only for them", len(missing))
        has_vector = np.array([d.digest in cache.vectors for d in docs], dtype=bool)
        width = len(next(iter(cache.vectors.values()))) if cache.vectors else 0
        matrix = np.zeros((len(docs), width), dtype=np.float32)
        for row, doc in enumerate(docs):
            if has_vector[row]:
                matrix[row] = cache.vectors[doc.digest]
        return RuleCollection(docs, matrix, model_key, keywords, has_vector)
    done = len(docs) - len(missing)
    for start in range(0, len(missing), batch):
        part = missing[start : start + batch]
        vectors, key = await embed([d.text for d in part])
        if key != model_key:
            raise EmbeddingModelMismatch(
                f"rule vectors came from {key} while the query was embedded by {model_key}",
                stored=model_key,
                current=key,
                fix="Keep one embedding provider per process (CTISTUDIO_EMBEDDING_PROVIDER).",
            )
        cache.vectors.update((d.digest, v) for d, v in zip(part, vectors, strict=True))
        done += len(part)
        if progress:
            progress(done, len(docs))
    if missing or not cache.path.is_file():
        cache.save({d.digest for d in docs})
    matrix = np.stack([cache.vectors[d.digest] for d in docs]).astype(np.float32)
    return RuleCollection(docs, matrix, model_key, keywords)
