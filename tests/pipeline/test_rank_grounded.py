"""Rank cites the article's sentences by number; an unusable answer ranks by the hunt score; an unreachable
server still fails. And the rank and extract steps on a server that answers every structured request with
``{}``: a hunt-score rank and the pre-extractor's floor for every kind, never a failed step."""

from __future__ import annotations

import json
import re
import socket

import pytest

from ctistudio.config import load_settings
from ctistudio.ingest.hunt_score import score_article
from ctistudio.llm import Gateway, ProviderUnavailable
from ctistudio.pipeline.extract import AGENTS, extract_observables
from ctistudio.pipeline.models import band_for
from ctistudio.pipeline.normalise import ArticleIndex
from ctistudio.pipeline.rank import MAX_EVIDENCE, rank_article, rank_schema
from ctistudio.pipeline.runner import execute_step
from ctistudio.pipeline.sentences import split_sentences
from ctistudio.pipeline.service import PipelineService
from ctistudio.resources import demo_article
from ctistudio.store import Store
from ctistudio.store.runs import run_observables
from ctistudio.testing.lmstudio_double import ChatCall, LMStudioDouble


def number_of(call: ChatCall, text: str) -> int:
    """The number of the sentence that starts with ``text`` in the rank prompt."""
    match = re.search(rf"^\[(\d+)\] {re.escape(text)}", call.last_user, re.M)
    assert match, f"{text!r} is not a numbered sentence of the rank prompt"
    return int(match.group(1))


@pytest.fixture
def double(lmstudio_double: LMStudioDouble, monkeypatch: pytest.MonkeyPatch) -> LMStudioDouble:
    monkeypatch.setenv("LLM_PROVIDER", "lmstudio")
    return lmstudio_double


async def rank(article: str, **kwargs):
    async with Gateway(load_settings()) as gateway:
        return await rank_article(gateway, article, **kwargs)


async def test_evidence_is_cited_by_sentence_number_and_filled_in_from_the_article(double: LMStudioDouble):
    def respond(call: ChatCall) -> str:
        whoami = number_of(call, "cmd.exe /c whoami /all")
        tree = number_of(call, "The process tree on every victim")  # a sentence over two lines
        cited = [whoami, number_of(call, "We track the cluster as PAPER LANTERN."), whoami, tree]
        return json.dumps(
            {
                "score": 8,
                "reasons": ["verbatim command lines", "process lineage", "verbatim command lines"],
                "evidence": cited,
            }
        )

    double.responder = respond
    article = demo_article()
    outcome = await rank(article, title="Operation Paper Lantern")
    assert (outcome.score, outcome.band, outcome.origin) == (8, "high", "model")
    assert outcome.evidence[:2] == ["cmd.exe /c whoami /all", "We track the cluster as PAPER LANTERN."]
    assert outcome.evidence[2].endswith("which spawned\n`powershell.exe` with a hidden window and an encoded command:")
    assert all(quote in article for quote in outcome.evidence)  # the article's own text: the web highlights it
    assert outcome.reasons == ["verbatim command lines", "process lineage"]
    assert outcome.dropped_evidence == 0
    [body] = [r.body for r in double.requests_to("/v1/chat/completions")]
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema == rank_schema(len(split_sentences(article)))
    assert schema["properties"]["score"]["enum"] == list(range(1, 11))
    assert "only indicators of compromise" in schema["properties"]["reasons"]["items"]["enum"]  # the rubric's labels
    assert schema["properties"]["evidence"]["maxItems"] == MAX_EVIDENCE
    assert body["messages"][0]["role"] == "system" and "SIGMA HUNTABILITY" in body["messages"][0]["content"]
    assert body["messages"][1]["content"].startswith("Title: Operation Paper Lantern\n\n[1] ")


@pytest.mark.parametrize(("hunt", "score"), [(100, 10), (64, 6), (0, 1)])
async def test_an_unusable_answer_ranks_by_the_hunt_score(double: LMStudioDouble, hunt: int, score: int):
    double.responder = lambda call: "{}"
    article = demo_article()
    outcome = await rank(article, hunt_score=hunt)
    assert (outcome.score, outcome.band, outcome.origin) == (score, band_for(score), "hunt_score")
    assert "did not produce valid structured output" in (outcome.fallback_reason or "")
    assert outcome.reasons[0] == f"deterministic hunt score {hunt}/100 (no usable model answer)"
    assert any("command-line arguments" in r for r in outcome.reasons[1:])
    index = ArticleIndex(article)
    assert outcome.evidence and all(index.contains(quote) for quote in outcome.evidence)
    assert outcome.usage.failed_calls == 1
    assert len(double.requests_to("/v1/chat/completions")) == 2  # the answer and its one repair


async def test_an_unreachable_server_still_fails_the_rank(monkeypatch: pytest.MonkeyPatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("LLM_PROVIDER", "lmstudio")
    monkeypatch.setenv("LMSTUDIO_API_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("CTISTUDIO_RETRIES", "0")
    with pytest.raises(ProviderUnavailable):
        await rank(demo_article(), hunt_score=100)


async def test_rank_and_extract_steps_on_a_server_answering_empty_objects(
    double: LMStudioDouble, store: Store, add_text
):
    double.responder = lambda call: "{}"
    article = demo_article()
    hunt = score_article(article, "Operation Paper Lantern").score
    article_id = add_text(article, title="Operation Paper Lantern", hunt_score=hunt)
    settings = load_settings()
    async with Gateway(settings) as gateway:
        service = PipelineService(settings, store, gateway)
        run_id = service.create_run(article_id)
        for step in ("prepare", "rank", "extract"):
            await execute_step(run_id, step, service.deps)
        floor = await extract_observables(None, article)

    steps = {s.name: s for s in service.run_view(run_id).steps}
    assert [steps[n].status for n in ("prepare", "rank", "extract")] == ["succeeded"] * 3
    rank = steps["rank"].output
    assert (rank["origin"], rank["score"], rank["band"]) == ("hunt_score", 10, "excellent")
    assert rank["passed"] is True and rank["evidence"] and rank["reasons"]
    extract = steps["extract"].output
    assert extract["modes"] == {a.kind: "pattern" for a in AGENTS}
    assert extract["by_origin"] == {"model": 0, "pattern": len(floor.observables)}
    with store.session() as session:
        stored = {(o.kind, o.value, o.extractor) for o in run_observables(session, run_id)}
    assert stored == {(o.kind, o.value, "pattern") for o in floor.observables}
    kinds = {kind for kind, _, _ in stored}
    assert kinds == {"cmdline", "lineage", "registry", "service", "scheduled_task", "network", "hunt_query"}
