"""Several inference hosts per provider: spreading, per-host limits, model-aware choice, a host dying under load."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from ctistudio.cli.llm import app as llm_app
from ctistudio.config import load_settings
from ctistudio.errors import ConfigurationError
from ctistudio.llm import Gateway
from ctistudio.llm.hosts import HostSet
from ctistudio.testing.host_balance import run_balance
from ctistudio.testing.lmstudio_double import CHAT, LMStudioDouble

RANK_MODEL = "qwen/qwen3-4b-2507"


def _answered(double: LMStudioDouble) -> int:
    return sum(1 for r in double.requests_to(CHAT) if r.status == 200)


def _gateway(monkeypatch: pytest.MonkeyPatch, *doubles: LMStudioDouble, in_flight: int = 4) -> Gateway:
    monkeypatch.setenv("LMSTUDIO_API_URL", ",".join(d.url for d in doubles))
    monkeypatch.setenv("LLM_PROVIDER", "lmstudio")
    monkeypatch.setenv("CTISTUDIO_MAX_IN_FLIGHT", str(in_flight))
    return Gateway(load_settings(env_file=None))


def test_a_comma_separated_url_makes_one_provider_per_host_without_localhost_fallback(monkeypatch):
    monkeypatch.setenv("LMSTUDIO_API_URL", "http://10.0.0.1:1234, http://10.0.0.2:1234/v1/")
    provider = Gateway(load_settings(env_file=None)).provider("lmstudio")
    assert isinstance(provider, HostSet)
    assert [h.transport.candidates for h in provider.hosts()] == [
        ["http://10.0.0.1:1234/v1"],
        ["http://10.0.0.2:1234/v1"],
    ]
    monkeypatch.setenv("LMSTUDIO_API_URL", "http://10.0.0.1:1234")  # one host keeps its fallback hosts
    single = Gateway(load_settings(env_file=None)).provider("lmstudio")
    assert single.hosts() == [single] and "http://localhost:1234/v1" in single.transport.candidates


def test_a_bad_url_in_the_list_is_named(monkeypatch):
    monkeypatch.setenv("OLLAMA_URL", "http://gpu1:11434,gpu2:11434")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env_file=None)
    assert "OLLAMA_URL" in caught.value.message and "'gpu2:11434' is not" in caught.value.message


async def test_requests_spread_over_hosts_each_with_its_own_in_flight_limit(start_double, monkeypatch):
    a, b = start_double(latency=0.15), start_double(latency=0.15)
    gateway = _gateway(monkeypatch, a, b, in_flight=2)
    await asyncio.gather(*(gateway.chat(f"q{n}", task="rank", max_tokens=4) for n in range(8)))
    await gateway.aclose()
    assert (_answered(a), _answered(b)) == (4, 4)
    assert (a.peak_in_flight, b.peak_in_flight) == (2, 2)


async def test_one_request_at_a_time_alternates_between_idle_hosts(start_double, monkeypatch):
    a, b, c = start_double(), start_double(), start_double()
    gateway = _gateway(monkeypatch, a, b, c)
    for n in range(9):
        await gateway.chat(f"q{n}", task="rank", max_tokens=4)
    await gateway.aclose()
    assert [_answered(d) for d in (a, b, c)] == [3, 3, 3]


async def test_hosts_with_the_model_loaded_get_its_requests(start_double, monkeypatch):
    loaded = start_double()
    cold = start_double(models={RANK_MODEL: None, "other/model": 8192})  # has it on disk, not loaded
    gateway = _gateway(monkeypatch, cold, loaded)
    for n in range(6):
        await gateway.chat(f"q{n}", task="rank", max_tokens=4)
    assert (_answered(loaded), _answered(cold)) == (6, 0)
    loaded.stop()  # the only host with the model is gone: the cold one loads it on demand (JIT)
    await gateway.chat("after", task="rank", max_tokens=4)
    await gateway.aclose()
    assert _answered(cold) == 1 and cold.context_of(RANK_MODEL) is not None


async def test_a_host_killed_under_load_loses_no_request_and_the_others_share_its_work():
    outcome = await run_balance(hosts=3, requests=200, kill_at=50)
    assert outcome.killed_after == 50
    assert outcome.failed == 0, outcome.errors
    assert outcome.received[0] < 50  # the killed host had taken its share of the first 50, no more
    assert outcome.survivor_spread <= 0.20, outcome.answered


def test_llm_test_reports_every_host(start_double, monkeypatch):
    up, down = start_double(), start_double()
    up_url, down_url = up.url, down.url
    monkeypatch.setenv("LMSTUDIO_API_URL", f"{up_url},{down_url}")
    monkeypatch.setenv("CTISTUDIO_EMBEDDED", "false")
    down.stop()
    result = CliRunner().invoke(llm_app, ["test", "--provider", "lmstudio", "--json"])
    reports = json.loads(result.stdout)["reports"]
    assert [(r["url"], r["ok"]) for r in reports] == [(up_url, True), (down_url, False)]
    assert result.exit_code == 1  # one host down: the test says so
