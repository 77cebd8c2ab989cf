"""Vector search over chunk embeddings: pgvector inside PostgreSQL, or an in-memory numpy index.

The vectors are stored as float32 BLOBs in ``chunks`` on either database. :func:`chunk_vector_index`
picks the search for a store, :func:`vector_backend` says which one and why (``ctistudio rag status``):

- **pgvector** — PostgreSQL whose server has the extension (``CREATE EXTENSION IF NOT EXISTS vector``
  succeeds, or it exists already): the vectors are copied into the derived table ``chunk_vectors``
  (:mod:`ctistudio.store.pgvector`) and searched there by an exact inner-product scan.
- **numpy** — everything else: SQLite (sqlite-vec needs ``sqlite3.enable_load_extension``, which many
  Python builds — this project's among them — lack), and PostgreSQL without pgvector (Debian's packages
  have none). The index loads the BLOBs once per process into one contiguous matrix and answers with an
  exact (brute-force) inner product. At 100,000 × 384 that is ~150 MB and a few milliseconds per query
  (``benchmarks/retrieval.py``).

Both are exact and return the same ranking: the vectors are unit length, so the inner product is the
cosine similarity.

The index notices new chunks on every query through the newest chunk id (an index lookup) and appends
them; at most every ``RECOUNT_SECONDS`` it also compares the number of chunks, and reloads in full when
chunks were removed. (Between two recounts a removed chunk can still be a vector hit; the search drops
hits whose chunk no longer exists.)
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass

import numpy as np
from sqlalchemy.engine import Engine

from ctistudio.embeddings import blob_to_vector
from ctistudio.store import Store
from ctistudio.store.chunks import iter_chunk_vectors, newest_vector_id, vector_signature
from ctistudio.store.pgvector import ensure_pgvector, pgvector_search, sync_chunk_vectors, vector_counts

RECOUNT_SECONDS = 10.0


@dataclass(frozen=True)
class VectorBackend:
    name: str
    detail: str


def vector_backend(store: Store) -> VectorBackend:
    """Which vector search runs for ``store`` and why (shown by ``ctistudio rag status``).

    On PostgreSQL this enables pgvector when the server has it (derived data, as on the first search).
    """
    if store.dialect == "sqlite":
        if not hasattr(sqlite3.Connection, "enable_load_extension"):
            reason = "this Python's sqlite3 cannot load extensions (no enable_load_extension), so sqlite-vec is out"
        else:
            reason = "sqlite-vec would also search exhaustively; the numpy index needs no extension"
        return VectorBackend("numpy", f"exact inner-product search in memory: {reason}")
    status = ensure_pgvector(store.engine)
    if status.available:
        return VectorBackend(
            "pgvector", f"exact inner-product search in PostgreSQL ({status.detail}, table chunk_vectors)"
        )
    return VectorBackend(
        "numpy",
        f"exact inner-product search in memory: this PostgreSQL server has no usable pgvector ({status.detail}); "
        "install pgvector on the server to search inside the database",
    )


class VectorIndex:
    """The vectors of one embedding model (``model_key``) as a matrix, with chunk and article ids."""

    def __init__(self, model_key: str) -> None:
        self.model_key = model_key
        self.ids = np.zeros(0, dtype=np.int64)
        self.article_ids = np.zeros(0, dtype=np.int64)
        self.matrix = np.zeros((0, 0), dtype=np.float32)
        self._newest = 0
        self._counted_at = -RECOUNT_SECONDS
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dimensions(self) -> int:
        return int(self.matrix.shape[1]) if len(self.matrix) else 0

    def refresh(self, store: Store, *, recount: bool = False) -> None:
        """Bring the index up to date with the database (cheap when nothing changed)."""
        now = time.monotonic()
        recount = recount or now - self._counted_at >= RECOUNT_SECONDS
        with store.session() as session:
            newest = newest_vector_id(session, self.model_key)
            count = vector_signature(session, self.model_key)[0] if recount else None
        with self._lock:
            if newest < self._newest:  # the newest chunks were removed
                self._reload(store, newest)
                return
            if newest > self._newest:
                with store.session() as session:
                    rows = [r for b in iter_chunk_vectors(session, self.model_key, after_id=self._newest) for r in b]
                self._append(rows)
                self._newest = max([self._newest, *(r[0] for r in rows)])
            if count is not None:
                self._counted_at = now
                if count != len(self.ids):  # chunks were removed (or added while we looked): reload
                    self._reload(store, newest)

    def _reload(self, store: Store, newest: int) -> None:
        with store.session() as session:
            rows = [r for b in iter_chunk_vectors(session, self.model_key) for r in b]
        self._replace(rows)
        self._newest = max(newest, int(self.ids.max()) if len(self.ids) else 0)

    def _rows_to_arrays(self, rows: list[tuple[int, int, bytes]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        articles = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
        if not rows:
            return ids, articles, np.zeros((0, self.dimensions), dtype=np.float32)
        dims = len(blob_to_vector(rows[0][2]))
        matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4")
        if matrix.size != dims * len(rows):
            for _, _, blob in rows:
                blob_to_vector(blob, dims)  # raises with the count of the odd vector
        return ids, articles, matrix.reshape(len(rows), dims).astype(np.float32, copy=False)

    def _append(self, rows: list[tuple[int, int, bytes]]) -> None:
        ids, articles, matrix = self._rows_to_arrays(rows)
        self.ids = np.concatenate([self.ids, ids])
        self.article_ids = np.concatenate([self.article_ids, articles])
        self.matrix = np.concatenate([self.matrix, matrix]) if len(self.matrix) else matrix

    def _replace(self, rows: list[tuple[int, int, bytes]]) -> None:
        self.ids, self.article_ids, self.matrix = self._rows_to_arrays(rows)

    def search(
        self,
        vector: np.ndarray,
        *,
        limit: int = 50,
        article_ids: np.ndarray | None = None,
        min_similarity: float = -1.0,
    ) -> list[tuple[int, float]]:
        """``(chunk id, cosine similarity)`` of the nearest chunks, best first.

        ``article_ids`` keeps only chunks of those articles; hits below ``min_similarity`` are dropped.
        """
        with self._lock:
            ids, articles, matrix = self.ids, self.article_ids, self.matrix
        if not len(ids):
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if query.shape[0] != matrix.shape[1]:
            raise ValueError(f"query has {query.shape[0]} dimensions, the index {matrix.shape[1]}")
        scores = matrix @ query
        if article_ids is not None:
            scores = np.where(np.isin(articles, article_ids), scores, -np.inf)
        take = min(limit, len(scores))
        top = np.argpartition(-scores, take - 1)[:take]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(ids[i]), float(scores[i])) for i in top if scores[i] >= min_similarity]


class PgVectorIndex:
    """``model_key``'s vectors in PostgreSQL's ``chunk_vectors`` table, searched by pgvector.

    Same interface as :class:`VectorIndex`. :meth:`refresh` copies chunks written since the last query
    (newest-id check) and, at most every ``RECOUNT_SECONDS``, any other missing ones (count check);
    removed chunks take their vectors with them (``ON DELETE CASCADE``).
    """

    def __init__(self, model_key: str) -> None:
        self.model_key = model_key
        self._engine: Engine | None = None
        self._newest = 0
        self._count = 0
        self._counted_at = -RECOUNT_SECONDS
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._count

    def refresh(self, store: Store, *, recount: bool = False) -> None:
        now = time.monotonic()
        recount = recount or now - self._counted_at >= RECOUNT_SECONDS
        engine = self._engine = store.engine
        with store.session() as session:
            newest = newest_vector_id(session, self.model_key)
        with self._lock:
            if newest != self._newest:
                with engine.connect() as connection:
                    synced = vector_counts(connection, self.model_key)[1]
                if newest > synced:
                    sync_chunk_vectors(engine, self.model_key, after_id=synced)
                self._newest, recount = newest, True
            if recount:
                with store.session() as session:
                    expected = vector_signature(session, self.model_key)[0]
                with engine.connect() as connection:
                    count = vector_counts(connection, self.model_key)[0]
                if count < expected:
                    count += sync_chunk_vectors(engine, self.model_key, all_missing=True)
                self._count, self._counted_at = count, now

    def search(
        self,
        vector: np.ndarray,
        *,
        limit: int = 50,
        article_ids: np.ndarray | None = None,
        min_similarity: float = -1.0,
    ) -> list[tuple[int, float]]:
        """``(chunk id, cosine similarity)`` of the nearest chunks, best first (see :meth:`VectorIndex.search`)."""
        if self._engine is None:
            raise RuntimeError("PgVectorIndex.search before refresh")
        allowed = article_ids.tolist() if article_ids is not None else None
        with self._engine.connect() as connection:
            hits = pgvector_search(connection, self.model_key, vector, limit=limit, article_ids=allowed)
        return [(chunk_id, score) for chunk_id, score in hits if score >= min_similarity]


_indexes: dict[tuple[str, str], VectorIndex] = {}
_pg_indexes: dict[tuple[str, str], PgVectorIndex] = {}
_indexes_lock = threading.Lock()


def shared_index(store: Store, model_key: str) -> VectorIndex:
    """The process's up-to-date in-memory index of ``model_key``'s vectors in ``store`` (built on first use)."""
    key = (store.url, model_key)
    with _indexes_lock:
        index = _indexes.get(key)
        if index is None:
            index = _indexes[key] = VectorIndex(model_key)
    index.refresh(store)
    return index


def chunk_vector_index(store: Store, model_key: str) -> VectorIndex | PgVectorIndex:
    """The vector search for ``store``: pgvector when the PostgreSQL server has it, else the numpy index."""
    if store.dialect != "postgresql" or not ensure_pgvector(store.engine).available:
        return shared_index(store, model_key)
    key = (store.url, model_key)
    with _indexes_lock:
        index = _pg_indexes.get(key)
        if index is None:
            index = _pg_indexes[key] = PgVectorIndex(model_key)
    index.refresh(store)
    return index
