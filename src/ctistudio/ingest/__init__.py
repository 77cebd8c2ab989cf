"""Ingestion: sources.yaml, feeds, pages, uploads and pasted text → deduplicated, scored articles.

Entry point: :class:`ctistudio.ingest.service.IngestService`. Reusable pieces: :func:`score_article`
(deterministic hunt score with evidence) and :func:`detect_platforms` (Windows/Linux/macOS/cloud with
evidence), :func:`canonical_url`, :func:`content_hash` and :func:`simhash`.
"""

from ctistudio.ingest.canonical_url import canonical_url
from ctistudio.ingest.errors import FetchFailed, Refused
from ctistudio.ingest.fingerprints import content_hash, simhash
from ctistudio.ingest.hunt_score import HuntScore, score_article
from ctistudio.ingest.intake import ArticleCandidate, IngestOutcome
from ctistudio.ingest.platforms import PlatformDetection, detect_platforms
from ctistudio.ingest.service import IngestService

__all__ = [
    "ArticleCandidate",
    "FetchFailed",
    "HuntScore",
    "IngestOutcome",
    "IngestService",
    "PlatformDetection",
    "Refused",
    "canonical_url",
    "content_hash",
    "detect_platforms",
    "score_article",
    "simhash",
]
