"""Hallucination guard: an extracted item stays only if the article really contains it.

Two checks, under the normalisation of :mod:`ctistudio.pipeline.normalise` (case, whitespace, defanging,
Markdown escapes): the item's ``source_evidence`` must be a quote of the article, and its ``value`` must be
supported by the article too (a registry value name may be appended to a quoted key; a lineage item's
parent and child must both be named). Everything refused is counted by reason, never silently lost.
"""

from __future__ import annotations

import re

from ctistudio.pipeline.models import CONFIDENCE_VALUE, Dropped, ExtractedItem, Observable
from ctistudio.pipeline.normalise import ArticleIndex, normalise_item

MIN_EVIDENCE_CHARS = 6


def _stem(image: str) -> str:
    """``C:\\Windows\\System32\\WINWORD.EXE`` → ``winword`` (what an article may call it)."""
    name = re.split(r"[\\/]", image.strip().strip("\"'`"))[-1]
    return re.sub(r"\.(exe|com|bat|cmd|dll)$", "", name, flags=re.I)


def value_supported(kind: str, item: ExtractedItem, article: ArticleIndex) -> bool:
    if kind == "lineage":
        parent, child = getattr(item, "parent", ""), getattr(item, "child", "")
        return bool(parent and child) and article.contains(_stem(parent)) and article.contains(_stem(child))
    if article.contains(item.value):
        return True
    if kind == "registry" and "\\" in item.value:
        key, _, name = item.value.rstrip("\\").rpartition("\\")
        return article.contains(key) and article.contains(name)
    if kind in ("service", "scheduled_task"):
        # a task path may be written with or without its leading backslash / folder
        return article.contains(item.value.strip("\\").rpartition("\\")[2])
    return False


def attributes_of(item: ExtractedItem) -> dict[str, str]:
    extra = item.model_dump(exclude={"value", "source_evidence", "justification", "confidence"})
    return {k: str(v) for k, v in extra.items() if v not in (None, "")}


def guard_items(kind: str, items: list[ExtractedItem], article: ArticleIndex) -> tuple[list[Observable], list[Dropped]]:
    """Split ``items`` into observables the article supports and dropped ones (duplicates merged)."""
    kept: list[Observable] = []
    dropped: list[Dropped] = []
    seen: set[str] = set()
    for item in items:
        reason = None
        if len(item.source_evidence.strip()) < MIN_EVIDENCE_CHARS:
            reason = "evidence_too_short"
        elif not article.contains_any_line(item.source_evidence):
            reason = "evidence_not_in_article"
        elif not value_supported(kind, item, article):
            reason = "value_not_in_article"
        if reason is not None:
            dropped.append(Dropped(kind=kind, value=item.value[:300], reason=reason))  # type: ignore[arg-type]
            continue
        key = normalise_item(item.value)
        if key in seen:
            continue
        seen.add(key)
        kept.append(
            Observable(
                kind=kind,
                value=item.value,
                source_evidence=item.source_evidence,
                justification=item.justification,
                confidence=CONFIDENCE_VALUE.get(item.confidence, 0.5),
                origin="model",
                attributes=attributes_of(item),
            )
        )
    return kept, dropped


def guard_quotes(quotes: list[str], article: ArticleIndex) -> tuple[list[str], int]:
    """Rank evidence: the quotes found in the article, and how many were not."""
    good = [q for q in quotes if len(q.strip()) >= MIN_EVIDENCE_CHARS and article.contains_any_line(q)]
    return good, len(quotes) - len(good)
