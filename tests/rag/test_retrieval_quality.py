"""Retrieval quality with REAL embeddings (the embedded all-MiniLM-L6-v2) on the fixture corpus.

The corpus (tests/rag/data/corpus.yaml) holds 12 articles and 20 questions whose answer is in exactly
one article. recall@5 = share of questions whose article is among the first five distinct articles
returned. Floor 0.9 (18 of 20): the questions are written the way analysts ask, half of them paraphrased
away from the article's words, so a sound hybrid retriever finds nearly all; a ranker that ignored the
question would place the right article in the top five of twelve only ~42% of the time, and either
search alone scores lower than the fusion here (printed, and asserted not to beat it). On this small,
topically distinct corpus all three reach 1.00 at 5, so recall@1 (≥ 0.85) is asserted as well.
"""

from __future__ import annotations

import shutil

import pytest

from ctistudio.config import load_settings
from ctistudio.llm import Gateway
from ctistudio.rag import Retriever, backfill
from ctistudio.store import Store

from .conftest import add_corpus

RECALL_FLOOR = 0.9
FIRST_FLOOR = 0.85  # recall@1: 17 of 20 (measured 0.95 with MiniLM when written)


@pytest.fixture
async def minilm_retriever(tmp_path, corpus, monkeypatch):
    monkeypatch.setenv("CTISTUDIO_EMBEDDING_PROVIDER", "embedded")
    settings = load_settings(env_file=None)
    with Store(url=f"sqlite:///{tmp_path / 'quality.db'}") as store:
        ids = add_corpus(store, corpus)
        async with Gateway(settings) as gateway:
            retriever = Retriever(store, gateway)
            report = await backfill(retriever)
            assert report.model == "embedded/all-minilm-l6-v2-int8/384"
            yield retriever, ids


def _top_articles(results, n=5):
    seen = []
    for chunk in results.chunks:
        if chunk.article_id not in seen:
            seen.append(chunk.article_id)
    return seen[:n]


async def test_recall_at_5_with_minilm(minilm_retriever, corpus, record_property, capsys):
    retriever, ids = minilm_retriever
    hits = {"hybrid": 0, "vector": 0, "keyword": 0}
    first = 0  # questions whose article is ranked first
    misses = []
    for item in corpus["questions"]:
        results = await retriever.search(item["q"], limit=20, rule_limit=0)
        expected = {ids[key] for key in item["expect"]}
        top = _top_articles(results)
        first += bool(top and top[0] in expected)
        if expected & set(top):
            hits["hybrid"] += 1
        else:
            misses.append(item["q"])
        by_vector = sorted((c for c in results.chunks if c.vector_score is not None), key=lambda c: -c.vector_score)
        by_keyword = sorted((c for c in results.chunks if c.keyword_score is not None), key=lambda c: -c.keyword_score)
        for name, ranked in (("vector", by_vector), ("keyword", by_keyword)):
            top = list(dict.fromkeys(c.article_id for c in ranked))[:5]
            hits[name] += bool(expected & set(top))
    total = len(corpus["questions"])
    recall = {name: count / total for name, count in hits.items()}
    record_property("recall_at_5", recall)
    with capsys.disabled():
        print(f"\nrecall@5 on {total} questions: " + ", ".join(f"{k} {v:.2f}" for k, v in recall.items())
              + f"; hybrid recall@1 {first / total:.2f}")  # fmt: skip
    assert recall["hybrid"] >= RECALL_FLOOR, f"missed: {misses}"
    assert first / total >= FIRST_FLOOR, "the right article should usually be the first one"
    assert recall["hybrid"] >= max(recall["vector"], recall["keyword"])


async def test_questions_outside_the_library_find_nothing(minilm_retriever, corpus):
    retriever, _ = minilm_retriever
    for question in corpus["no_match"]:
        results = await retriever.search(question, rule_limit=0)
        assert results.chunks == [], f"{question!r} matched {[c.title for c in results.chunks]}"


async def test_sigmahq_rules_are_found_by_meaning(minilm_retriever, shared, tmp_path):
    retriever, _ = minilm_retriever
    security = shared / "sigmahq" / "rules" / "windows" / "builtin" / "security"
    folder = tmp_path / "rules"
    folder.mkdir()
    # 40 Windows security-log rules (kept small: every rule is embedded on the 2-core CI machine)
    picked = [*sorted(security.glob("*.yml"))[:39], security / "win_security_susp_rc4_kerberos.yml"]
    for path in picked:
        shutil.copy(path, folder / path.name)
    rules = Retriever(retriever.store, retriever.gateway, rules_dir=folder)
    results = await rules.search("kerberoasting: service tickets requested with RC4 encryption", rule_limit=5)
    titles = [r.title.lower() for r in results.rules]
    assert any("kerbero" in t or "rc4" in t or "ticket" in t for t in titles), titles
