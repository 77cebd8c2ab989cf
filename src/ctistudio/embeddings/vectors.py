"""Bookkeeping for stored vectors: which model made them, refusing to mix models, float32 BLOBs.

Vectors from two different models (or the same model served by two engines with other weights) live in
different spaces: comparing them gives meaningless scores without any error. So every stored vector
carries the key of the model that made it (:func:`model_key`), and a store checks with
:func:`ensure_same_model` before adding to or searching an index; a mismatch is refused with the fix
(re-index). A failed embedding raises; it is never replaced by a zero vector (:func:`validate_vectors`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ctistudio.errors import CtiStudioError


class EmbeddingFailed(CtiStudioError):
    """A text could not be embedded, or the model returned an unusable vector."""


class EmbeddingModelMismatch(CtiStudioError):
    """Vectors of another embedding model are already stored; mixing them is refused."""

    def __init__(self, message: str, *, stored: str, current: str, fix: str) -> None:
        super().__init__(message, fix=fix)
        self.stored = stored
        self.current = current


def model_key(provider: str, model: str, dimensions: int) -> str:
    """The identity stored with every vector: ``embedded/all-minilm-l6-v2-int8/384``."""
    return f"{provider}/{model}/{dimensions}"


def ensure_same_model(
    stored: str | None,
    current: str,
    *,
    what: str = "the vector index",
    reindex_hint: str = "re-index the stored texts with the current model",
) -> None:
    """Raise :class:`EmbeddingModelMismatch` when ``what`` holds vectors of another model than ``current``.

    ``stored`` is ``None`` for an empty index (anything may be added). ``reindex_hint`` names the command
    that rebuilds the index (the store owns it), e.g. "run `ctistudio rag reindex`".
    """
    if stored is None or stored == current:
        return
    raise EmbeddingModelMismatch(
        f"{what} holds vectors made by {stored}, but embeddings now come from {current}; "
        "vectors of different models cannot be compared",
        stored=stored,
        current=current,
        fix=f"Either {reindex_hint}, or switch back to the model that built it (CTISTUDIO_EMBEDDING_PROVIDER and "
        "its embedding model setting).",
    )


def validate_vectors(
    vectors: np.ndarray | Sequence[Sequence[float]], *, expected_dimensions: int | None = None, model: str = "model"
) -> np.ndarray:
    """``vectors`` as a float32 matrix; raises :class:`EmbeddingFailed` on a wrong shape, NaN/inf or zero vector."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or (matrix.size == 0 and len(matrix) != 0):
        raise EmbeddingFailed(f"{model} returned vectors of shape {matrix.shape}, not (texts, dimensions)")
    if expected_dimensions is not None and len(matrix) and matrix.shape[1] != expected_dimensions:
        raise EmbeddingFailed(
            f"{model} returned {matrix.shape[1]}-dimension vectors where {expected_dimensions} were expected",
            fix="The embedding model changed; re-index with the new model.",
        )
    if not np.all(np.isfinite(matrix)):
        raise EmbeddingFailed(f"{model} returned a vector with NaN or infinite values")
    if len(matrix) and np.any(np.linalg.norm(matrix, axis=1) == 0):
        raise EmbeddingFailed(f"{model} returned an all-zero vector", fix="Check the text and the embedding server.")
    return matrix


def vector_to_blob(vector: np.ndarray | Sequence[float]) -> bytes:
    """A vector as little-endian float32 bytes (4 bytes per dimension) for a BLOB column."""
    return np.asarray(vector, dtype="<f4").tobytes()


def blob_to_vector(blob: bytes, dimensions: int | None = None) -> np.ndarray:
    """The float32 vector stored by :func:`vector_to_blob` (checks the length when ``dimensions`` is given)."""
    if len(blob) % 4:
        raise EmbeddingFailed(f"a stored vector has {len(blob)} bytes, not a whole number of float32 values")
    vector = np.frombuffer(blob, dtype="<f4")
    if dimensions is not None and len(vector) != dimensions:
        raise EmbeddingFailed(
            f"a stored vector has {len(vector)} dimensions, the index expects {dimensions}",
            fix="Re-index: the stored vectors come from another model.",
        )
    return vector
