"""The embedded embedder: all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime, no PyTorch, no server.

The model folder (``ctistudio models install all-minilm-l6-v2-int8``) holds ``model.onnx`` and the
model's ``tokenizer.json``. A text becomes a 384-dimension unit vector: WordPiece tokens (at most 256, as
sentence-transformers uses this model), the transformer's last hidden state mean-pooled over the real
tokens, then L2-normalised — so a dot product is the cosine similarity.

A text that cannot be embedded raises :class:`EmbeddingFailed`; a zero or non-finite vector is never
returned.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from ctistudio.embeddings.vectors import EmbeddingFailed, validate_vectors

MAX_TOKENS = 256
DIMENSIONS = 384
BATCH = 32


class MiniLMEmbedder:
    """Embeds texts with the ONNX model in ``folder``. Thread-safe; load once and reuse."""

    dimensions = DIMENSIONS

    def __init__(self, folder: Path, *, name: str = "all-minilm-l6-v2-int8", threads: int | None = None) -> None:
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EmbeddingFailed(
                "the embedded embedder needs onnxruntime and tokenizers",
                fix="Install ctistudio's dependencies again (`./studio start`).",
            ) from exc
        folder = Path(folder)
        model, vocab = folder / "model.onnx", folder / "tokenizer.json"
        for path in (model, vocab):
            if not path.is_file():
                raise EmbeddingFailed(
                    f"{path} is missing", fix=f"Run `ctistudio models install {name}` (it downloads both files)."
                )
        self.name = name
        self.tokenizer: Any = Tokenizer.from_file(str(vocab))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the longest text of each batch
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session: Any = onnxruntime.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self.session.get_inputs()}
        self._lock = threading.Lock()  # the tokenizer's padding settings are shared state

    def embed(self, texts: list[str]) -> np.ndarray:
        """``len(texts)`` × 384 float32 unit vectors. Raises :class:`EmbeddingFailed` on bad input or output."""
        if isinstance(texts, str):
            raise EmbeddingFailed("embed() takes a list of texts, not one string", fix="Pass [text].")
        for index, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise EmbeddingFailed(
                    f"text {index} is empty: an empty text has no meaning to embed",
                    fix="Drop empty texts before embedding.",
                )
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        batches = [self._embed_batch(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)]
        vectors = np.concatenate(batches, axis=0)
        validate_vectors(vectors, expected_dimensions=DIMENSIONS, model=self.name)
        return vectors

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        try:
            (hidden,) = self.session.run(["last_hidden_state"], feed)
        except Exception as exc:  # onnxruntime raises its own untyped errors: translate once, here
            raise EmbeddingFailed(f"the ONNX embedder failed: {exc}", fix="Reinstall the model (--force).") from exc
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        if not np.all(np.isfinite(norms)) or np.any(norms < 1e-12):
            raise EmbeddingFailed(f"{self.name} produced a zero or non-finite vector", fix="Check the input text.")
        return (pooled / norms).astype(np.float32)
