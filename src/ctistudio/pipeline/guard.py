"""Hallucination guard: what a model adds stays only if the article really contains it.

The extraction agents select the pre-extractor's candidates by number (always spans of the article) and may
add *new* items, which come without a quote. A new item must have the shape of its kind (a command line
starts with a tool, an executable or a cmdlet; a registry path with a hive; a network item is one IP,
domain or URL …) and be in the article under the normalisation of :mod:`ctistudio.pipeline.normalise`
(case, whitespace, defanging, Markdown escapes) — a registry value name may follow a key the article
names, a task or service may be named without its folder. The article's own line becomes the evidence;
a lineage pair needs a sentence that names both processes. Everything refused is counted by reason.
"""

from __future__ import annotations

import re

from ctistudio.pipeline.hunt_queries import classify_query
from ctistudio.pipeline.lineage import image_name, looks_like_image
from ctistudio.pipeline.models import Dropped, Observable
from ctistudio.pipeline.normalise import ArticleIndex
from ctistudio.pipeline.preextract import looks_like_command, looks_like_registry_path, network_kind
from ctistudio.pipeline.sentences import split_sentences

MIN_EVIDENCE_CHARS = 6


def _stem(image: str) -> str:
    """``C:\\Windows\\System32\\WINWORD.EXE`` → ``winword`` (what an article may call it)."""
    name = re.split(r"[\\/]", image.strip().strip("\"'`"))[-1]
    return re.sub(r"\.(exe|com|bat|cmd|dll)$", "", name, flags=re.I)


def value_in_article(kind: str, value: str, article: ArticleIndex) -> bool:
    """The article has ``value`` (a registry value name may follow its key; a task/service path its name)."""
    if article.contains(value):
        return True
    if kind == "registry" and "\\" in value:
        key, _, name = value.rstrip("\\").rpartition("\\")
        return article.contains(key) and article.contains(name)
    if kind in ("service", "scheduled_task"):
        return article.contains(value.strip("\\").rpartition("\\")[2])
    return False


def guard_quotes(quotes: list[str], article: ArticleIndex) -> tuple[list[str], int]:
    """Rank evidence: the quotes found in the article, and how many were not."""
    good = [q for q in quotes if len(q.strip()) >= MIN_EVIDENCE_CHARS and article.contains_any_line(q)]
    return good, len(quotes) - len(good)


# -- new items: what a model adds beyond the pre-extractor's candidates ---------------------------------------
NEW_ITEM_CONFIDENCE = 0.6
_RELATION_CUE = re.compile(r"spawn|child|parent|→|->|process tree", re.I)
_SHORT_NAME_WORDS = 6


def looks_like(kind: str, value: str) -> bool:
    """Whether ``value`` has the shape of an observable of ``kind`` (a sentence is never a command line)."""
    single_line = "\n" not in value.strip()
    if kind == "cmdline":
        return looks_like_command(value)
    if kind == "registry":
        return single_line and looks_like_registry_path(value)
    if kind == "service":
        return single_line and len(value) <= 100 and len(value.split()) <= _SHORT_NAME_WORDS
    if kind == "scheduled_task":
        return single_line and len(value) <= 260
    if kind == "network":
        return network_kind(value) is not None
    if kind == "hunt_query":
        return classify_query(value) is not None
    return False


def _new_lineage(pair: tuple[str, str], index: ArticleIndex) -> Observable | Dropped:
    parent, child = image_name(pair[0]), image_name(pair[1])
    value = f"{parent} → {child}"
    if not (looks_like_image(pair[0]) and looks_like_image(pair[1])) or _stem(parent).lower() == _stem(child).lower():
        return Dropped(kind="lineage", value=value[:300], reason="wrong_kind")
    both = [s.quote for s in split_sentences(index.article) if _names(s.text, parent) and _names(s.text, child)]
    both.sort(key=lambda text: not _RELATION_CUE.search(text))  # a sentence that states the relation first
    if not both:
        return Dropped(kind="lineage", value=value[:300], reason="value_not_in_article")
    return Observable(
        kind="lineage",
        value=value,
        source_evidence=both[0],
        justification="parent and child named together by the article",
        confidence=NEW_ITEM_CONFIDENCE,
        attributes={"parent": parent, "child": child},
    )


def _names(sentence: str, image: str) -> bool:
    return bool(re.search(rf"(?<![\w.-]){re.escape(_stem(image))}(?![\w-])", sentence, re.I))


def _new_item(kind: str, value: str, index: ArticleIndex) -> Observable | Dropped:
    if not looks_like(kind, value):
        return Dropped(kind=kind, value=value[:300], reason="wrong_kind")
    if not value_in_article(kind, value, index):
        return Dropped(kind=kind, value=value[:300], reason="value_not_in_article")
    value = index.exact_text(value) or value  # the article's own characters (case, backslashes, spacing)
    attributes: dict[str, str] = {}
    if kind == "network":
        attributes["kind"] = network_kind(value) or "other"
    elif kind == "hunt_query":
        attributes["language"] = classify_query(value) or "other"
    return Observable(
        kind=kind,
        value=value,
        source_evidence=index.line_with(value) or index.line_with(value.rstrip("\\").rpartition("\\")[0]) or value,
        justification="found by the model in the article",
        confidence=NEW_ITEM_CONFIDENCE,
        attributes=attributes,
    )


def guard_new_items(
    kind: str, items: list[str | tuple[str, str]], index: ArticleIndex
) -> tuple[list[Observable], list[Dropped]]:
    """The model's new items that have the shape of ``kind`` and are in the article, with the article's line
    as evidence (the model quotes nothing); the others, dropped by reason."""
    kept: list[Observable] = []
    dropped: list[Dropped] = []
    for item in items:
        if isinstance(item, tuple):
            result = _new_lineage(item, index) if kind == "lineage" else None
        else:
            result = _new_item(kind, item, index) if kind != "lineage" else None
        if isinstance(result, Observable):
            kept.append(result)
        elif result is not None:
            dropped.append(result)
    return kept, dropped
