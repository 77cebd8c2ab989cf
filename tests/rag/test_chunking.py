"""Chunking: bounded, overlapping, covering every word, and calibrated against MiniLM's real tokenizer."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from ctistudio.rag.chunking import chunk_text, estimate_tokens
from ctistudio.resources import demo_article


def _words(text: str) -> list[str]:
    return re.findall(r"\S+", text)


def test_chunks_cover_the_text_in_order_within_the_budget():
    text = demo_article()
    chunks = chunk_text(text, max_tokens=120, overlap=24)
    assert len(chunks) > 3
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.token_count <= 120
        assert chunk.text == text[chunk.char_start : chunk.char_end]
        assert estimate_tokens(chunk.text) <= 120
    # every character that is not whitespace is inside some chunk
    covered = [False] * len(text)
    for chunk in chunks:
        for i in range(chunk.char_start, chunk.char_end):
            covered[i] = True
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())
    assert all(a.char_start < b.char_start for a, b in itertools.pairwise(chunks))


def test_consecutive_chunks_overlap_by_whole_sentences():
    sentences = [f"Sentence number {i} mentions certutil and rundll32 at step {i}." for i in range(60)]
    chunks = chunk_text(" ".join(sentences), max_tokens=80, overlap=20)
    assert len(chunks) > 4
    for before, after in itertools.pairwise(chunks):
        assert after.char_start < before.char_end, "the next chunk starts inside the previous one"
        shared = before.text[after.char_start - before.char_start :]
        assert shared.startswith("Sentence number"), "overlap starts at a sentence boundary"
        assert 0 < estimate_tokens(shared) <= 20


def test_without_overlap_chunks_do_not_share_text():
    text = " ".join(f"Step {i}: the actor ran whoami /all on host {i}." for i in range(80))
    chunks = chunk_text(text, max_tokens=64, overlap=0)
    assert all(b.char_start >= a.char_end for a, b in itertools.pairwise(chunks))


def test_a_giant_word_is_cut_hard_and_blank_text_gives_nothing():
    blob = "A" * 5000
    chunks = chunk_text(f"Encoded payload: {blob} end.", max_tokens=50, overlap=0)
    assert len(chunks) > 5
    assert all(c.token_count <= 50 for c in chunks)
    assert "".join(c.text for c in chunks).count("A") == 5000
    assert chunk_text("   \n\n  ") == []


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="overlap"):
        chunk_text("text", max_tokens=100, overlap=60)
    with pytest.raises(ValueError, match="max_tokens"):
        chunk_text("text", max_tokens=8)


def test_estimate_is_calibrated_against_minilm_tokenizer(shared: Path):
    """Default chunks of real CTI text (the demo article, SigmaHQ rules full of hashes and command lines)
    never exceed MiniLM's 256-token window, and the estimate is not wildly pessimistic either."""
    import tokenizers

    from ctistudio.modelhub import DEFAULT_EMBEDDING_MODEL, ModelInstaller

    folder = ModelInstaller.from_settings(_settings()).path(DEFAULT_EMBEDDING_MODEL)  # ./studio test installs it
    tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    rules = sorted((shared / "sigmahq" / "rules" / "windows" / "process_creation").glob("*.yml"))[:200]
    texts = [demo_article()] + [p.read_text(encoding="utf-8") for p in rules]
    ratios, longest = [], 0
    for text in texts:
        for chunk in chunk_text(text):
            real = len(tokenizer.encode(chunk.text).ids)  # with [CLS] and [SEP], as the embedder sees it
            longest = max(longest, real)
            if chunk.token_count >= 100:
                ratios.append(real / chunk.token_count)
    assert longest <= 256
    ratios.sort()
    assert 0.6 <= ratios[len(ratios) // 2] <= 1.2, "the estimate drifted away from the real tokenizer"


def _settings():
    from ctistudio.config import load_settings

    return load_settings(env_file=None)
