"""Token-aware chunking with overlap: articles become pieces an embedding model sees whole.

The embedded embedder (all-MiniLM-L6-v2) reads at most 256 WordPiece tokens and silently drops the rest,
so a chunk must stay under that: 180 estimated tokens keep the worst case seen (hash lists) under 256.
Chunks are packed from whole sentences (long sentences are split at word boundaries) up to
``max_tokens``; each chunk after the first starts with the last sentences of the one before, up to
``overlap`` tokens, so a fact that straddles a boundary is still found whole in one chunk.

Tokens are counted with :func:`estimate_tokens`, a fast tokenizer-free estimate calibrated on CTI text
against MiniLM's WordPiece tokenizer (tests check the calibration on real articles): words cost one token
per four characters beyond the first four, digits one per three, every punctuation mark one. Command
lines, paths and hashes — which WordPiece splits into many pieces — are therefore not under-counted.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

DEFAULT_CHUNK_TOKENS = 180
DEFAULT_OVERLAP_TOKENS = 32

_PIECES = re.compile(r"[^\W\d_]+|\d+|[^\w\s]|_")
# Sentence ends (., !, ? followed by space), line breaks and paragraph breaks are the preferred cuts.
_UNIT_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n\s*")


@dataclass(frozen=True)
class TextChunk:
    """One chunk of a text: its ``ordinal``, the text and where it sits in the original (``[start, end)``)."""

    ordinal: int
    text: str
    token_count: int
    char_start: int
    char_end: int


def estimate_tokens(text: str) -> int:
    """An upper-leaning estimate of the WordPiece tokens of ``text`` (see the module docstring)."""
    total = 0
    for piece in _PIECES.findall(text):
        if piece.isdigit():
            total += math.ceil(len(piece) / 3)
        elif piece[0].isalpha():
            total += 1 + max(0, math.ceil((len(piece) - 4) / 4))
        else:
            total += 1
    return total


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in _UNIT_END.finditer(text):
        if match.start() > start:
            spans.append((start, match.start()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def _split_long(text: str, start: int, end: int, max_tokens: int) -> list[_Unit]:
    """A sentence longer than ``max_tokens`` cut at word boundaries (or hard, inside one giant word)."""
    units: list[_Unit] = []
    words = [(m.start() + start, m.end() + start) for m in re.finditer(r"\S+", text[start:end])]
    piece_start, piece_end, tokens = words[0][0], words[0][0], 0
    for word_start, word_end in words:
        cost = estimate_tokens(text[word_start:word_end])
        if cost > max_tokens:  # one "word" (a base64 blob, a huge URL) longer than a chunk: cut it hard
            if tokens:
                units.append(_Unit(piece_start, piece_end, tokens))
            step = max(1, (word_end - word_start) * max_tokens // cost)
            for cut in range(word_start, word_end, step):
                stop = min(cut + step, word_end)
                units.append(_Unit(cut, stop, estimate_tokens(text[cut:stop])))
            piece_start, piece_end, tokens = word_end, word_end, 0
            continue
        if tokens and tokens + cost > max_tokens:
            units.append(_Unit(piece_start, piece_end, tokens))
            piece_start, tokens = word_start, 0
        piece_end = word_end
        tokens += cost
    if tokens:
        units.append(_Unit(piece_start, piece_end, tokens))
    return units


def _units(text: str, max_tokens: int) -> list[_Unit]:
    units: list[_Unit] = []
    for start, end in _sentence_spans(text):
        tokens = estimate_tokens(text[start:end])
        if tokens <= max_tokens:
            units.append(_Unit(start, end, tokens))
        else:
            units.extend(_split_long(text, start, end, max_tokens))
    return units


def chunk_text(
    text: str, *, max_tokens: int = DEFAULT_CHUNK_TOKENS, overlap: int = DEFAULT_OVERLAP_TOKENS
) -> list[TextChunk]:
    """``text`` cut into chunks of at most ``max_tokens`` (estimated) with ``overlap`` tokens carried over.

    Every character of a non-blank text is in at least one chunk; chunks follow the text's order. A
    blank text gives no chunks.
    """
    if max_tokens < 16:
        raise ValueError("max_tokens must be at least 16")
    if not 0 <= overlap < max_tokens // 2:
        raise ValueError("overlap must be between 0 and half of max_tokens")
    units = _units(text, max_tokens)
    chunks: list[TextChunk] = []
    first = 0
    while first < len(units):
        last, tokens = first, units[first].tokens
        while last + 1 < len(units) and tokens + units[last + 1].tokens <= max_tokens:
            last += 1
            tokens += units[last].tokens
        start, end = units[first].start, units[last].end
        chunks.append(TextChunk(len(chunks), text[start:end], tokens, start, end))
        if last + 1 >= len(units):
            break
        # The next chunk begins with the tail of this one (whole units, at most ``overlap`` tokens),
        # but always moves forward by at least one unit.
        following, carried = last + 1, 0
        while following - 1 > first and carried + units[following - 1].tokens <= overlap:
            following -= 1
            carried += units[following].tokens
        first = following
    return chunks
