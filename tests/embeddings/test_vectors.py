"""Vector bookkeeping: model keys, refusing to mix models, BLOBs, validation."""

from __future__ import annotations

import numpy as np
import pytest

from ctistudio.embeddings import (
    EmbeddingFailed,
    EmbeddingModelMismatch,
    blob_to_vector,
    ensure_same_model,
    model_key,
    validate_vectors,
    vector_to_blob,
)


def test_model_key():
    assert model_key("embedded", "all-minilm-l6-v2-int8", 384) == "embedded/all-minilm-l6-v2-int8/384"


def test_mixing_models_is_refused_with_the_fix():
    current = model_key("embedded", "all-minilm-l6-v2-int8", 384)
    ensure_same_model(None, current)  # empty index: anything goes
    ensure_same_model(current, current)
    with pytest.raises(EmbeddingModelMismatch) as caught:
        ensure_same_model(
            "lmstudio/text-embedding-nomic-embed-text-v1.5/768",
            current,
            what="the article index",
            reindex_hint="run `ctistudio rag reindex`",
        )
    error = caught.value
    assert "the article index holds vectors made by lmstudio/" in error.message and current in error.message
    assert error.fix.startswith("Either run `ctistudio rag reindex`")
    assert (error.stored, error.current) == ("lmstudio/text-embedding-nomic-embed-text-v1.5/768", current)


def test_blob_round_trip():
    vector = np.array([0.25, -1.5, 3.0], dtype=np.float32)
    blob = vector_to_blob(vector)
    assert len(blob) == 12
    assert np.array_equal(blob_to_vector(blob, 3), vector)
    with pytest.raises(EmbeddingFailed, match="3 dimensions, the index expects 4"):
        blob_to_vector(blob, 4)
    with pytest.raises(EmbeddingFailed, match="whole number"):
        blob_to_vector(blob[:-1])


def test_validation_refuses_zero_nan_and_wrong_sizes():
    good = validate_vectors([[0.6, 0.8]], expected_dimensions=2)
    assert good.dtype == np.float32
    with pytest.raises(EmbeddingFailed, match="all-zero"):
        validate_vectors([[0.6, 0.8], [0.0, 0.0]])
    with pytest.raises(EmbeddingFailed, match="NaN"):
        validate_vectors([[float("nan"), 1.0]])
    with pytest.raises(EmbeddingFailed, match="3-dimension vectors where 2"):
        validate_vectors([[1.0, 0.0, 0.0]], expected_dimensions=2)
    with pytest.raises(EmbeddingFailed, match="shape"):
        validate_vectors([1.0, 2.0])
