"""Embeddings without a server (all-MiniLM-L6-v2 int8 ONNX) and the bookkeeping of stored vectors.

    from ctistudio.embeddings import MiniLMEmbedder, model_key, ensure_same_model
    embedder = MiniLMEmbedder(installer.path("all-minilm-l6-v2-int8"))
    vectors = embedder.embed(["certutil -urlcache -f http://…"])     # (1, 384) float32, unit length

Most callers go through ``Gateway.embed`` instead, which picks the provider (``CTISTUDIO_EMBEDDING_PROVIDER``).
"""

from ctistudio.embeddings.minilm import DIMENSIONS, MiniLMEmbedder
from ctistudio.embeddings.vectors import (
    EmbeddingFailed,
    EmbeddingModelMismatch,
    blob_to_vector,
    ensure_same_model,
    model_key,
    validate_vectors,
    vector_to_blob,
)

__all__ = [
    "DIMENSIONS",
    "EmbeddingFailed",
    "EmbeddingModelMismatch",
    "MiniLMEmbedder",
    "blob_to_vector",
    "ensure_same_model",
    "model_key",
    "validate_vectors",
    "vector_to_blob",
]
