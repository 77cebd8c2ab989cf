"""``run_benchmark`` against the LM Studio double: fixed latencies and token counts, so the figures are
checked against what the double did (token counts exactly, times against the double's sleeps)."""

from __future__ import annotations

import json

from ctistudio.bench import BenchOptions, run_benchmark
from ctistudio.bench.stats import percentile
from ctistudio.bench.tasks import DEMO_CHAT_FACTS, BenchArticle
from ctistudio.pipeline.preextract import pre_extract
from ctistudio.pipeline.rank import RANK_MAX_TOKENS
from ctistudio.pipeline.selection import NEW_ITEMS_MAX_TOKENS, answer_budget
from ctistudio.pipeline.sigma_gen import SIGMA_MAX_TOKENS
from ctistudio.testing.http_double import Fault
from ctistudio.testing.lmstudio_double import LMStudioDouble
from ctistudio.testing.sigma_answers import lsass_rule, sigma_answer

from .conftest import CHAT_ANSWER, EXTRACT_ANSWER, RANK_ANSWER, answer_for, completion_tokens

LATENCY = 0.05
TOKEN_LATENCY = 0.002
CHAT_PATH = "/v1/chat/completions"


async def test_quick_run_measures_every_task_with_the_doubles_token_counts(start_double, bench_settings):
    lms = start_double(LMStudioDouble, latency=LATENCY, token_latency=TOKEN_LATENCY)
    lms.responder = answer_for
    report = await run_benchmark(BenchOptions(providers=["lmstudio"], quick=True), settings=bench_settings(lms))

    assert report.unavailable == []
    # rank, extract and sigma run on LMSTUDIO_MODEL_RANK/_EXTRACT/_SIGMA, chat on LMSTUDIO_MODEL (seed defaults)
    assert [(r.provider, r.model, [t.task for t in r.tasks]) for r in report.results] == [
        ("lmstudio", "qwen/qwen3-4b-2507", ["rank", "extract", "sigma"]),
        ("lmstudio", "deepseek/deepseek-r1-0528-qwen3-8b", ["chat"]),
    ]
    samples = [s for r in report.results for t in r.tasks for s in t.samples]
    assert len(samples) == 8 and all(s.ok and s.valid for s in samples)

    # token counts: exactly the double's tokenizer over what was sent and what it answered
    sent = [r.body for r in lms.requests_to(CHAT_PATH)]
    assert len(sent) == 8
    assert [s.prompt_tokens for s in samples] == [lms.prompt_tokens(body["messages"]) for body in sent]
    replies = [json.dumps(RANK_ANSWER)] * 2 + [json.dumps(EXTRACT_ANSWER)] * 2
    replies += [sigma_answer(lsass_rule(body["messages"][-1]["content"])) for body in sent[4:6]] + [CHAT_ANSWER] * 2
    assert [s.completion_tokens for s in samples] == [completion_tokens(text) for text in replies]
    extract_budget = answer_budget(18, BenchArticle.demo().variant("0"))  # the demo's 18 command lines listed
    budgets = [RANK_MAX_TOKENS] * 2 + [extract_budget] * 2 + [SIGMA_MAX_TOKENS] * 2
    assert [body["max_tokens"] for body in sent[:6]] == budgets  # the pipeline's answer budgets

    # times: never below the double's sleeps; rates never above what those sleeps allow
    for s in samples:
        n = s.completion_tokens
        assert s.latency_s >= LATENCY + (n - 1) * TOKEN_LATENCY
        assert LATENCY <= s.ttft_s < s.latency_s
        assert s.generation_tps <= n / ((n - 1) * TOKEN_LATENCY)
        assert s.prompt_tps <= s.prompt_tokens / LATENCY
    for target in report.results:
        assert target.cold_start_s == target.tasks[0].first_call_s == target.tasks[0].samples[0].latency_s
        assert target.url == lms.url + "/chat/completions"
        assert target.in_process is False and target.peak_rss_bytes is None
        assert target.context_length == 16384


async def test_summary_figures_are_the_statistics_of_the_warm_samples(start_double, bench_settings):
    lms = start_double(LMStudioDouble, latency=LATENCY, token_latency=TOKEN_LATENCY)
    lms.responder = answer_for
    options = BenchOptions(providers=["lmstudio"], tasks=["rank", "extract"], repeat=3)
    report = await run_benchmark(options, settings=bench_settings(lms))

    for task in report.results[0].tasks:
        assert len(task.samples) == 4
        warm = task.samples[1:]
        latencies = [s.latency_s for s in warm]
        assert task.first_call_s == task.samples[0].latency_s
        assert task.latency.n == 3
        assert task.latency.p50 == sorted(latencies)[1]
        assert task.latency.p95 == percentile(latencies, 95)
        assert task.latency.min == min(latencies) and task.latency.max == max(latencies)
        assert task.ttft.p50 == sorted(s.ttft_s for s in warm)[1]
        assert task.generation_tps.p50 == sorted(s.generation_tps for s in warm)[1]
        assert task.mean_prompt_tokens == sum(s.prompt_tokens for s in task.samples) / 4
        assert task.success_rate == 1.0 and task.validity_rate == 1.0

    rank, extract = report.results[0].tasks
    assert rank.quality == {"score": 8.0, "evidence_cited": 2.0}
    # two candidates selected, the invented command dropped by the hallucination guard
    reference = pre_extract(BenchArticle.demo().body).of("cmdline")
    assert extract.quality == {
        "selected": 2.0,
        "new_items": 0.0,
        "dropped_items": 1.0,
        "cmdline_recall": 2 / len(reference),
    }


async def test_failed_and_invalid_answers_are_counted_not_hidden(start_double, bench_settings):
    lms = start_double(LMStudioDouble, latency=0.01)
    extract_calls = []

    def responder(call):
        if ((call.response_format or {}).get("json_schema") or {}).get("name") == "cmdline_selection":
            extract_calls.append(call)
            if len(extract_calls) == 2:
                return '{"keep": [7, 10], "new": ["cmd.exe /c whoami /all'  # cut short: not JSON
        return answer_for(call)

    lms.responder = responder
    # a non-transient refusal of the very first call (a 400 is never retried)
    lms.fail(Fault(status=400, body={"error": "Invalid request: benchmark fault"}))
    options = BenchOptions(providers=["lmstudio"], tasks=["rank", "extract", "chat"], quick=True)
    report = await run_benchmark(options, settings=bench_settings(lms))

    rank, extract = report.results[0].tasks
    assert [s.ok for s in rank.samples] == [False, True]
    assert "benchmark fault" in rank.samples[0].error
    assert rank.success_rate == 0.5 and rank.validity_rate == 1.0
    assert rank.latency.n == 1  # the warm figures come from the call that answered
    assert [s.valid for s in extract.samples] == [True, False]
    assert extract.success_rate == 1.0 and extract.validity_rate == 0.5
    assert "JSON" in extract.samples[1].detail
    chat = report.results[1].tasks[0]
    assert chat.quality["facts_named"] == sum(f in CHAT_ANSWER.lower() for f in DEMO_CHAT_FACTS) / len(DEMO_CHAT_FACTS)


async def test_concurrency_reaches_the_server_in_parallel_and_compare_raw_sends_the_same_request(
    start_double, bench_settings
):
    lms = start_double(LMStudioDouble, latency=0.2)
    lms.responder = answer_for
    options = BenchOptions(providers=["lmstudio"], tasks=["rank"], repeat=2, concurrency=4, compare_raw=True)
    report = await run_benchmark(options, settings=bench_settings(lms))

    rank = report.results[0].tasks[0]
    c = rank.concurrency
    assert (c.requests, c.succeeded, c.peak_in_flight) == (4, 4, 4)
    assert lms.peak_in_flight == 4
    assert c.completion_tokens == 4 * completion_tokens(json.dumps(RANK_ANSWER))
    assert c.aggregate_generation_tps == c.completion_tokens / c.wall_s
    assert c.speedup == c.aggregate_generation_tps / c.single_generation_tps
    assert c.wall_s < 4 * 0.2  # four 0.2 s answers overlapped instead of queueing

    raw = rank.raw
    assert raw.pairs == 2 and raw.unavailable is None
    assert raw.overhead_ratio == raw.gateway_p50_s / raw.raw_p50_s
    bodies = [r.body for r in lms.requests_to(CHAT_PATH)]
    assert len(bodies) == 3 + 4 + 4  # first + 2 warm, 4 at once, 2 pairs
    gateway_body, raw_body = bodies[7], bodies[8]  # pair 1: gateway first
    assert not gateway_body.get("stream") and not raw_body.get("stream")
    for key in ("model", "response_format", "temperature", "top_p", "seed", "max_tokens"):
        assert raw_body[key] == gateway_body[key]
    assert "sample rank.raw.gateway.0" in gateway_body["messages"][1]["content"]
    assert "sample rank.raw.raw.0" in raw_body["messages"][1]["content"]


async def test_extract_gets_the_pipelines_budget_for_the_article(start_double, bench_settings, tmp_path):
    article = tmp_path / "short.md"
    sentence = "The loader ran `rundll32.exe C:\\ProgramData\\a.dll,Start` at logon. "
    article.write_text("# Short report\n\n" + sentence * 5)
    lms = start_double(LMStudioDouble)
    lms.responder = answer_for
    options = BenchOptions(providers=["lmstudio"], tasks=["extract"], quick=True, article=article)
    report = await run_benchmark(options, settings=bench_settings(lms))
    budget = answer_budget(1, BenchArticle.from_file(article).variant("0"))  # one command line, listed once
    assert budget < NEW_ITEMS_MAX_TOKENS  # a short article: the sub-agents' budget is smaller than the cap
    assert report.params.max_tokens["extract"] == budget
    assert {r.body["max_tokens"] for r in lms.requests_to(CHAT_PATH)} == {budget}
