"""Novelty: each generated rule against the SigmaHQ corpus → duplicate, similar or novel.

The judging itself is the Sigma tooling's deterministic similarity engine
(:class:`ctistudio.sigma.similarity.SimilarityIndex`); this module adapts it to the pipeline and finds
the index (``<CTISTUDIO_DATA_DIR>/sigma/similarity-index.json``, built by ``ctistudio sigma index``). Every
rule is judged on its own, so one duplicate in a batch never holds back the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ctistudio.config import Settings
from ctistudio.pipeline.models import NoveltyResult, SimilarRule

if TYPE_CHECKING:
    from ctistudio.sigma.similarity import SimilarityIndex

TOP_K = 5


class NoveltyJudge(Protocol):
    """Anything that gives a rule (YAML) its verdict and its most similar known rules."""

    def judge(self, yaml_text: str) -> NoveltyResult: ...

    def describe(self) -> dict[str, Any]:
        """What the verdicts were computed against (for the run's checkpoint)."""
        ...


class IndexNovelty:
    """A :class:`NoveltyJudge` over a loaded SigmaHQ similarity index."""

    def __init__(self, index: SimilarityIndex, *, path: Path | None = None, top_k: int = TOP_K) -> None:
        self.index = index
        self.path = path
        self.top_k = top_k

    def judge(self, yaml_text: str) -> NoveltyResult:
        """Raises :class:`ctistudio.sigma.errors.SigmaRuleUnreadable` for a rule that cannot be compared."""
        result = self.index.similar(yaml_text, self.top_k)
        return NoveltyResult(
            rule_id="",
            verdict=result.verdict,
            reason=result.reason,
            top=[
                SimilarRule(
                    rule_id=m.rule_id or "",
                    title=m.title,
                    path=m.path,
                    score=round(m.score, 4),
                    relation=m.relation,
                    verdict=m.verdict,
                )
                for m in result.matches
            ],
        )

    def describe(self) -> dict[str, Any]:
        info = self.index.info
        return {
            "path": str(self.path) if self.path else None,
            "rules": info.rules,
            "built_at": info.built_at,
            "corpus": info.corpus_url or info.corpus_path,
            "commit": info.corpus_commit,
        }


def load_novelty_judge(settings: Settings) -> NoveltyJudge | None:
    """The judge over this installation's SigmaHQ index, or ``None`` when no index has been built yet.

    A present but unreadable index raises (``SigmaIndexInvalid``, with the rebuild command as the fix).
    """
    from ctistudio.sigma.similarity import SimilarityIndex, default_index_path

    path = default_index_path(settings)
    if not path.is_file():
        return None
    return IndexNovelty(SimilarityIndex.load(path), path=path)
