"""Deterministic similarity of Sigma rules to a reference corpus (SigmaHQ): atoms, DNF, inverted index.

Use :class:`SimilarityIndex` (``build`` / ``save`` / ``load`` / ``similar``); :func:`default_index_path`
says where the CLI keeps it. The pieces: :mod:`.condition` (condition parser), :mod:`.atoms` (canonical
atoms and field aliases), :mod:`.dnf` (DNF with a cap, canonical simplification), :mod:`.canonical` (a
rule's canonical form and hash), :mod:`.scoring` (scores, relations, verdicts), :mod:`.index`.
"""

from __future__ import annotations

from pathlib import Path

from ctistudio.config import Settings
from ctistudio.sigma.similarity.canonical import CanonicalRule, RuleNotComparable, canonicalize
from ctistudio.sigma.similarity.index import INDEX_FILENAME, IndexInfo, SimilarityIndex
from ctistudio.sigma.similarity.scoring import (
    CONTAINED_SCORE,
    DUPLICATE_SCORE,
    SIMILAR_SCORE,
    Match,
    SimilarityResult,
)


def default_index_path(settings: Settings) -> Path:
    """``<CTISTUDIO_DATA_DIR>/sigma/similarity-index.json``."""
    return settings.data_dir / "sigma" / INDEX_FILENAME


__all__ = [
    "CONTAINED_SCORE",
    "DUPLICATE_SCORE",
    "SIMILAR_SCORE",
    "CanonicalRule",
    "IndexInfo",
    "Match",
    "RuleNotComparable",
    "SimilarityIndex",
    "SimilarityResult",
    "canonicalize",
    "default_index_path",
]
