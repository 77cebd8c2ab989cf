"""Rule embeddings: a semantic neighbour list next to the deterministic atom verdict.

``ctistudio sigma index`` embeds every corpus rule through the embedding provider (``Gateway.embed``, e.g.
the embedded MiniLM model or LM Studio) and stores the vectors with the model's name beside the atom index
(``similarity-embeddings.json``: float32 little-endian, base64). ``similar(..., query_vector=v)`` then
also lists the corpus rules whose embedding is closest (cosine) to the rule's. The verdict never depends
on embeddings: they are model-dependent, the atom index is not. A vector file made with another model,
or for another build of the index, is refused with the command that rebuilds it.

What is embedded per rule (:func:`embedding_text`): title, description, log source and its first atoms.
"""

from __future__ import annotations

import base64
import json
import math
import sys
from array import array
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ctistudio.sigma.errors import SigmaIndexInvalid

if TYPE_CHECKING:
    from ctistudio.llm import Gateway
    from ctistudio.sigma.similarity.index import SimilarityIndex

FORMAT = "ctistudio-sigma-embeddings"
FORMAT_VERSION = 1
BATCH_SIZE = 64
MAX_TEXT_CHARS = 600


class SemanticMatch(BaseModel):
    """A corpus rule close to the rule in embedding space (informational; not part of the verdict)."""

    path: str
    title: str
    logsource: str
    cosine: float


def embedding_text(title: str, description: str | None, logsource: str, atoms: Sequence[str]) -> str:
    """The text embedded for one rule (the same recipe for corpus rules and the rule being checked)."""
    parts = [title.strip().rstrip(".") + "."]
    if description:
        parts.append(" ".join(description.split()))
    parts.append(f"Log source: {logsource}.")
    parts.append("Detects: " + "; ".join(a.lstrip("!").split("|")[0] + " " + a.rsplit("|", 1)[-1] for a in atoms[:20]))
    return " ".join(parts)[:MAX_TEXT_CHARS]


def _unit(vector: Sequence[float]) -> array:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return array("f", (x / norm for x in vector))


class RuleEmbeddings:
    """Unit vectors of the corpus rules, row i for rule i of the index they were made for."""

    def __init__(self, model: str, provider: str, dimensions: int, index_built_at: str, vectors: array) -> None:
        if dimensions <= 0 or len(vectors) % dimensions:
            raise SigmaIndexInvalid(
                f"embedding vectors ({len(vectors)} floats) do not divide into rows of {dimensions}",
                fix="Rebuild: ctistudio sigma index --rules DIR.",
            )
        self.model = model
        self.provider = provider
        self.dimensions = dimensions
        self.index_built_at = index_built_at
        self.vectors = vectors

    @property
    def rows(self) -> int:
        return len(self.vectors) // self.dimensions

    def row(self, i: int) -> memoryview:
        return memoryview(self.vectors)[i * self.dimensions : (i + 1) * self.dimensions]

    def nearest(self, vector: Sequence[float], top_k: int) -> list[tuple[int, float]]:
        """(row, cosine) of the top-k rows closest to ``vector``."""
        if len(vector) != self.dimensions:
            raise SigmaIndexInvalid(
                f"the query embedding has {len(vector)} dimensions, the stored ones {self.dimensions} "
                f"(model {self.model})",
                fix=f"Embed the rule with {self.model}, or rebuild the index with the current embedding model.",
            )
        query = _unit(vector)
        scores = self._scores(query)
        ranked = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:top_k]
        return [(i, round(float(scores[i]), 4)) for i in ranked]

    def _scores(self, query: array) -> Any:
        try:
            import numpy as np
        except ImportError:  # pure Python: ~40 ms for SigmaHQ's 3,757 × 384
            d = self.dimensions
            return [sum(map(float.__mul__, query, self.vectors[i * d : (i + 1) * d])) for i in range(self.rows)]
        matrix = np.frombuffer(self.vectors, dtype=np.float32).reshape(self.rows, self.dimensions)
        return matrix @ np.frombuffer(query, dtype=np.float32)

    def save(self, path: Path) -> Path:
        data = self.vectors
        if sys.byteorder != "little":  # pragma: no cover - the format is little-endian everywhere
            data = array("f", data)
            data.byteswap()
        payload = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "model": self.model,
            "provider": self.provider,
            "dimensions": self.dimensions,
            "index_built_at": self.index_built_at,
            "rows": self.rows,
            "vectors": base64.b64encode(data.tobytes()).decode("ascii"),
        }
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(payload), encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> RuleEmbeddings:
        fix = "Rebuild: ctistudio sigma index --rules DIR (or pass --no-embeddings)."
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            if (payload.get("format"), payload.get("version")) != (FORMAT, FORMAT_VERSION):
                raise ValueError(f"format {payload.get('format')} v{payload.get('version')}")
            vectors = array("f")
            vectors.frombytes(base64.b64decode(payload["vectors"]))
            if sys.byteorder != "little":  # pragma: no cover
                vectors.byteswap()
            return cls(
                str(payload["model"]),
                str(payload["provider"]),
                int(payload["dimensions"]),
                str(payload["index_built_at"]),
                vectors,
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SigmaIndexInvalid(f"the rule embeddings {path} are unreadable: {exc}", fix=fix) from exc


def corpus_texts(index: SimilarityIndex) -> list[str]:
    return [
        embedding_text(
            rule.title,
            rule.description,
            "/".join(p or "-" for p in rule.logsource),
            [index.atoms[a] for a in sorted(rule.atoms, key=lambda a: -index.weights[a])],
        )
        for rule in index.rules
    ]


async def embed_index(
    gateway: Gateway,
    index: SimilarityIndex,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> RuleEmbeddings:
    """Embed every corpus rule of ``index`` through the gateway's embedding provider, in batches."""
    texts = corpus_texts(index)
    vectors = array("f")
    model = provider = ""
    dimensions = 0
    for start in range(0, len(texts), batch_size):
        result = await gateway.embed(texts[start : start + batch_size])
        model, provider, dimensions = result.model, result.provider, result.dimensions or len(result.vectors[0])
        for vector in result.vectors:
            vectors.extend(_unit(vector))
        if progress is not None:
            progress(min(start + batch_size, len(texts)), len(texts))
    return RuleEmbeddings(model, provider, dimensions, index.info.built_at, vectors)


async def embed_rule(gateway: Gateway, rule: str | Mapping[str, Any], index: SimilarityIndex) -> list[float]:
    """The embedding of one rule, made with the same recipe as the corpus's (use it as ``query_vector``)."""
    text = index.query_embedding_text(rule)
    result = await gateway.embed([text])
    if index.embeddings is not None and result.model != index.embeddings.model:
        raise SigmaIndexInvalid(
            f"the rule was embedded with {result.model}, the corpus with {index.embeddings.model}",
            fix="Use the same embedding model (CTISTUDIO_EMBEDDING_PROVIDER) or rebuild: ctistudio sigma index.",
        )
    return list(result.vectors[0])
