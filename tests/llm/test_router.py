"""Every router rule, against real HTTP doubles: retries, Retry-After, cooldown, concurrency, fallback."""

from __future__ import annotations

import asyncio
import socket

import pytest

from ctistudio.llm import (
    BadRequest,
    ChatRequest,
    Gateway,
    Message,
    ModelNotLoaded,
    NoProviderAvailable,
    ProviderUnavailable,
    RateLimited,
    Router,
    RouterPolicy,
    ServerError,
)
from ctistudio.llm.providers.lmstudio import LMStudioProvider
from ctistudio.llm.providers.openai_compat import OpenAICompatibleProvider
from ctistudio.testing.http_double import Fault
from ctistudio.testing.lmstudio_double import LMStudioDouble

CHAT = "/v1/chat/completions"


class RecordingSleep:
    """The router's sleep, recorded (and really slept, briefly): proves what it waited for."""

    def __init__(self, then=None) -> None:
        self.delays: list[float] = []
        self.then = then

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.then is not None:
            self.then()
        await asyncio.sleep(min(seconds, 0.01))


def lmstudio(url: str, **kwargs) -> LMStudioProvider:
    return LMStudioProvider(url, default_model="qwen/qwen3-4b-2507", **kwargs)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_no_retry_on_a_4xx(lmstudio_double: LMStudioDouble, settings_for):
    lmstudio_double.fail(Fault(status=400, body={"error": "'messages' is malformed"}))
    async with Gateway(settings_for(lmstudio_double)) as gateway:
        with pytest.raises(BadRequest, match="malformed"):
            await gateway.chat("hi")
    assert len(lmstudio_double.requests_to(CHAT)) == 1


async def test_5xx_is_retried_with_exponential_backoff(lmstudio_double: LMStudioDouble):
    lmstudio_double.server_error(times=2)
    sleep = RecordingSleep()
    router = Router([lmstudio(lmstudio_double.url)], policy=RouterPolicy(retries=2, backoff=0.1), sleep=sleep)
    result = await router.complete(ChatRequest(messages=[Message(role="user", content="hi")]))
    await router.aclose()
    assert result.text == "OK" and result.attempts == 3
    assert len(lmstudio_double.requests_to(CHAT)) == 3
    first, second = sleep.delays
    assert 0.1 <= first <= 0.125 and 0.2 <= second <= 0.25  # base·2^(n-1) plus at most 25% jitter


async def test_5xx_past_the_retries_is_raised_with_the_servers_words(lmstudio_double: LMStudioDouble, settings_for):
    lmstudio_double.server_error(times=10)
    async with Gateway(settings_for(lmstudio_double, retries=1)) as gateway:
        with pytest.raises(ServerError) as info:
            await gateway.chat("hi")
    assert "channel error" in info.value.message and info.value.status_code == 500
    assert "reload the model" in (info.value.fix or "")
    assert len(lmstudio_double.requests_to(CHAT)) == 2


async def test_retry_after_is_honoured(lmstudio_double: LMStudioDouble, settings_for):
    lmstudio_double.rate_limit(retry_after=1)
    async with Gateway(settings_for(lmstudio_double)) as gateway:
        result = await gateway.chat("hi")
    first, second = lmstudio_double.requests_to(CHAT)
    assert result.attempts == 2
    assert second.started - first.finished >= 0.95  # waited as told, not the 0.01 s backoff


async def test_retry_after_value_is_used_as_the_delay(lmstudio_double: LMStudioDouble):
    lmstudio_double.rate_limit(retry_after=7, times=5)
    sleep = RecordingSleep()
    router = Router([lmstudio(lmstudio_double.url)], policy=RouterPolicy(retries=2, backoff=0.01), sleep=sleep)
    with pytest.raises(RateLimited) as info:
        await router.complete(ChatRequest(messages=[Message(role="user", content="hi")]))
    await router.aclose()
    assert sleep.delays == [7.0, 7.0]
    assert info.value.retry_after == 7.0


async def test_connect_error_is_retried_until_the_server_comes_up(start_double):
    port = free_port()
    started: list[LMStudioDouble] = []

    def bring_the_server_up() -> None:
        if not started:
            started.append(start_double(LMStudioDouble, port=port))

    sleep = RecordingSleep(then=bring_the_server_up)
    provider = lmstudio(f"http://127.0.0.1:{port}/v1", fallback_hosts=[])
    router = Router([provider], policy=RouterPolicy(retries=2, backoff=0.01), sleep=sleep)
    result = await router.complete(ChatRequest(messages=[Message(role="user", content="hi")]))
    await router.aclose()
    assert result.attempts == 2 and result.text == "OK"


async def test_timeout_is_retried(lmstudio_double: LMStudioDouble, settings_for):
    lmstudio_double.slow_down(1.0)
    async with Gateway(settings_for(lmstudio_double)) as gateway:
        result = await gateway.chat("hi", timeout=0.3)
    assert result.attempts == 2
    assert len(lmstudio_double.requests_to(CHAT)) == 2


async def test_cooldown_after_repeated_failures(lmstudio_double: LMStudioDouble, settings_for):
    lmstudio_double.server_error(times=100)
    settings = settings_for(lmstudio_double, retries=2, cooldown_failures=3, cooldown_seconds=0.5)
    async with Gateway(settings) as gateway:
        with pytest.raises(ServerError):
            await gateway.chat("hi")
        assert len(lmstudio_double.requests_to(CHAT)) == 3
        with pytest.raises(ProviderUnavailable, match="cooling down"):
            await gateway.chat("hi")
        assert len(lmstudio_double.requests_to(CHAT)) == 3  # the endpoint was not even asked
        await asyncio.sleep(0.55)
        lmstudio_double.clear()
        assert (await gateway.chat("hi")).text == "OK"  # back in rotation; success resets the count
        assert gateway.router("lmstudio").endpoint_state("lmstudio").failures == 0


async def test_host_fallback_when_the_configured_url_is_unreachable(lmstudio_double: LMStudioDouble, settings_for):
    # 127.0.0.5 is loopback but nobody listens there; "localhost" (the first fallback host) answers.
    configured = f"http://127.0.0.5:{lmstudio_double.port}/v1"
    settings = settings_for(lmstudio_api_url=configured, lmstudio_embedding_url=configured + "/embeddings")
    async with Gateway(settings) as gateway:
        result = await gateway.chat("hi")
        embedded = await gateway.embed(["text"], provider="lmstudio")
        provider = gateway.provider("lmstudio")
        assert isinstance(provider, LMStudioProvider)
        assert provider.base_url == f"http://localhost:{lmstudio_double.port}/v1"
    assert result.url == f"http://localhost:{lmstudio_double.port}/v1/chat/completions"
    assert embedded.dimensions == 64
    assert len(lmstudio_double.requests_to(CHAT)) == 1


async def test_host_fallback_is_for_connection_failures_only(start_double, settings_for):
    healthy = start_double(LMStudioDouble)  # 127.0.0.1:P — where the fallback would go
    broken = start_double(LMStudioDouble, host="127.0.0.2", port=healthy.port)  # the configured host, answering 500
    broken.server_error(times=100)
    async with Gateway(settings_for(broken, retries=0)) as gateway:
        with pytest.raises(ServerError):
            await gateway.chat("hi")
    assert len(broken.requests_to(CHAT)) == 1
    assert healthy.requests == []  # a server that answers, even badly, is the one we talk to


async def test_concurrency_never_exceeds_the_per_endpoint_limit(start_double, settings_for):
    slow = start_double(LMStudioDouble, latency=0.1)
    async with Gateway(settings_for(slow, max_in_flight=4)) as gateway:
        results = await asyncio.gather(*(gateway.chat(f"question {i}") for i in range(20)))
        state = gateway.router().endpoint_state("lmstudio")
    assert len(results) == 20 and all(r.text == "OK" for r in results)
    assert 1 < slow.peak_in_flight <= 4
    assert state.peak_in_flight <= 4 and state.in_flight == 0


async def test_concurrency_limit_holds_across_chat_and_stream(start_double, settings_for):
    slow = start_double(LMStudioDouble, latency=0.05)

    async def streamed(gateway: Gateway, i: int) -> str:
        return "".join([d.text async for d in gateway.stream(f"s{i}")])

    async with Gateway(settings_for(slow, max_in_flight=3)) as gateway:
        chats = [gateway.chat(f"c{i}", task="rank") for i in range(8)]
        streams = [streamed(gateway, i) for i in range(8)]
        await asyncio.gather(*chats, *streams)
    assert 1 < slow.peak_in_flight <= 3


async def test_fallback_chain_skips_an_unavailable_provider(lmstudio_double: LMStudioDouble, settings_for):
    providers = {
        "down": lmstudio("http://127.0.0.1:9/v1", fallback_hosts=[]),
        "up": OpenAICompatibleProvider(lmstudio_double.url, name="up", default_model="qwen/qwen3-4b-2507"),
    }
    async with Gateway(settings_for(), providers=providers) as gateway:
        assert gateway.chain_names() == ["down", "up"]
        result = await gateway.chat("hi")
    assert result.provider == "up" and result.text == "OK"


async def test_auto_chain_from_settings_falls_back_to_the_next_enabled_provider(lmstudio_double, settings_for):
    settings = settings_for(
        lmstudio_api_url="http://127.0.0.1:9/v1",
        openai_compat_url=lmstudio_double.url,
        openai_compat_model="qwen/qwen3-4b-2507",
    )
    async with Gateway(settings) as gateway:
        assert gateway.chain_names() == ["lmstudio", "openai_compat"]
        result = await gateway.chat("hi")
    assert result.provider == "openai_compat"


async def test_fallback_on_model_not_loaded_but_not_on_bad_request(start_double, settings_for):
    first = start_double(LMStudioDouble, models={"other/model": 8192}, jit_loading=False)
    second = start_double(LMStudioDouble)
    providers = {"first": lmstudio(first.url, name="first"), "second": lmstudio(second.url, name="second")}
    async with Gateway(settings_for(), providers=providers) as gateway:
        result = await gateway.chat("hi")
        assert result.provider == "second"
        assert isinstance(gateway.router().providers[0], LMStudioProvider)
        first.fail(Fault(status=400, body={"error": "bad field"}))
        second.clear()
        first.add_model("qwen/qwen3-4b-2507", 8192)
        with pytest.raises(BadRequest):
            await gateway.chat("again")
    assert second.requests_to(CHAT) == []


async def test_rate_limited_past_retries_moves_to_the_next_provider(start_double, settings_for):
    busy = start_double(LMStudioDouble)
    busy.rate_limit(retry_after=0, times=10)
    spare = start_double(LMStudioDouble)
    providers = {"busy": lmstudio(busy.url, name="busy"), "spare": lmstudio(spare.url, name="spare")}
    async with Gateway(settings_for(retries=1), providers=providers) as gateway:
        result = await gateway.chat("hi")
    assert result.provider == "spare"
    assert len(busy.requests_to(CHAT)) == 2


async def test_all_providers_failing_names_each_failure(settings_for):
    providers = {
        "a": lmstudio("http://127.0.0.1:9/v1", name="a", fallback_hosts=[]),
        "b": lmstudio("http://127.0.0.1:7/v1", name="b", fallback_hosts=[]),
    }
    async with Gateway(settings_for(retries=0), providers=providers) as gateway:
        with pytest.raises(NoProviderAvailable) as info:
            await gateway.chat("hi")
    assert set(info.value.failures) == {"a", "b"}
    assert "LM Studio" in (info.value.fix or "")


async def test_determinism_settings_are_sent(lmstudio_double: LMStudioDouble, settings_for):
    async with Gateway(settings_for(lmstudio_double, lmstudio_seed=7)) as gateway:
        await gateway.chat("hi", task="rank")
    body = lmstudio_double.requests_to(CHAT)[0].body
    assert (body["temperature"], body["top_p"], body["seed"]) == (0.0, 0.9, 7)
    assert body["model"] == "qwen/qwen3-4b-2507"  # LMSTUDIO_MODEL_RANK


async def test_lm_studios_own_sampling_wins_for_lm_studio_only(start_double, settings_for):
    lms, other = start_double(LMStudioDouble), start_double(LMStudioDouble)
    values = {"seed": 5, "temperature": 0.2, "lmstudio_seed": 7, "timeout": 90.0, "lmstudio_timeout": 45.0}
    settings = settings_for(lms, openai_compat_url=other.url, openai_compat_model="qwen/qwen3-4b-2507", **values)
    async with Gateway(settings) as gateway:
        await gateway.chat("hi", provider="lmstudio")
        await gateway.chat("hi", provider="openai_compat")
        await gateway.chat("hi", provider="lmstudio", seed=3)  # a caller's own value wins over both
        timeouts = [gateway.provider(name).transport.timeout for name in ("lmstudio", "openai_compat")]
    first, explicit = (request.body for request in lms.requests_to(CHAT))
    (plain,) = (request.body for request in other.requests_to(CHAT))
    assert (first["seed"], first["temperature"], plain["seed"], plain["temperature"]) == (7, 0.2, 5, 0.2)
    assert explicit["seed"] == 3
    assert timeouts == [45.0, 90.0]


async def test_task_models_resolve_per_task(lmstudio_double: LMStudioDouble, settings_for):
    settings = settings_for(lmstudio_double, lmstudio_model_sigma="deepseek/deepseek-r1-0528-qwen3-8b")
    async with Gateway(settings) as gateway:
        sigma = await gateway.chat("rule?", task="sigma")
        explicit = await gateway.chat("x", task="sigma", model="qwen/qwen3-4b-2507")
    assert sigma.model == "deepseek/deepseek-r1-0528-qwen3-8b"
    assert explicit.model == "qwen/qwen3-4b-2507"


async def test_unknown_model_error_has_the_fix(lmstudio_double: LMStudioDouble, settings_for):
    async with Gateway(settings_for(lmstudio_double)) as gateway:
        with pytest.raises(ModelNotLoaded) as info:
            await gateway.chat("hi", model="nope/missing")
    assert "Invalid model identifier" in info.value.message
    assert "ctistudio llm models" in (info.value.fix or "")


async def test_many_calls_ask_for_the_model_list_once(lmstudio_double: LMStudioDouble, settings_for):
    async with Gateway(settings_for(lmstudio_double)) as gateway:
        for _ in range(5):
            await gateway.chat("hi")
    assert len(lmstudio_double.requests_to("/api/v1/models")) == 1
    assert len(lmstudio_double.requests_to(CHAT)) == 5
