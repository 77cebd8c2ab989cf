"""Content fingerprints: the exact-duplicate hash and the 64-bit simhash for near duplicates.

Both work on normalised text (lower case, words only), so whitespace, punctuation and markup
differences between two copies of one article do not count.
"""

from __future__ import annotations

import hashlib
import re

_WORD = re.compile(r"\w+", re.UNICODE)
SHINGLE = 3  # words per feature
NEAR_DUPLICATE_DISTANCE = 3  # Hamming distance up to which two articles are the same text


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def content_hash(text: str) -> str:
    """SHA-256 of the article's words joined by single spaces."""
    return hashlib.sha256(" ".join(words(text)).encode("utf-8")).hexdigest()


def _feature_hash(feature: str) -> int:
    return int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "big")


def simhash(text: str) -> int:
    """Charikar's simhash over word 3-shingles: an unsigned 64-bit int; similar texts differ in few bits."""
    tokens = words(text)
    if len(tokens) < SHINGLE:
        features = tokens or [""]
    else:
        features = [" ".join(tokens[i : i + SHINGLE]) for i in range(len(tokens) - SHINGLE + 1)]
    # Column-wise bit counts over the binary strings run in C (a per-bit Python loop is ~20x slower).
    rows = [format(_feature_hash(feature), "064b") for feature in features]
    half = len(rows) / 2
    value = 0
    for position, column in enumerate(zip(*rows, strict=True)):
        if column.count("1") > half:
            value |= 1 << (63 - position)
    return value
