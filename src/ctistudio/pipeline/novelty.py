"""Novelty: each generated rule against the SigmaHQ corpus → duplicate, similar or novel.

The judging itself is the Sigma tooling's deterministic similarity engine
(:class:`ctistudio.sigma.similarity.SimilarityIndex`); this module adapts it to the pipeline and finds
the index. Every rule is judged on its own, so one duplicate in a batch never holds back the others.
"""

from __future__ import annotations

from typing import Any, Protocol

from ctistudio.config import Settings
from ctistudio.pipeline.models import NoveltyResult


class NoveltyJudge(Protocol):
    """Anything that gives a rule (YAML) its verdict and its most similar known rules."""

    def judge(self, yaml_text: str) -> NoveltyResult: ...

    def describe(self) -> dict[str, Any]:
        """What the verdicts were computed against (for the run's checkpoint)."""
        ...


def load_novelty_judge(settings: Settings) -> NoveltyJudge | None:
    """The judge over this installation's SigmaHQ index, or ``None`` when no index has been built yet."""
    return None
