"""The in-process queued provider that service-level tests use in place of a server."""

from __future__ import annotations

import pytest

from ctistudio.config import load_settings
from ctistudio.llm import Gateway, ModelNotLoaded
from ctistudio.testing.queued_provider import QueuedProvider


def gateway_with(**providers: QueuedProvider) -> Gateway:
    return Gateway(load_settings({"embedded": False}, env_file=None), providers=providers)


async def test_answers_in_order_and_keeps_the_requests():
    fake = QueuedProvider("first", {"verdict": True})
    async with gateway_with(queued=fake) as gateway:
        assert (await gateway.chat("one")).text == "first"
        assert (await gateway.chat("two", schema={"type": "object"})).parsed == {"verdict": True}
    assert [r.messages[-1].content for r in fake.requests] == ["one", "two"] and fake.pending == 0


async def test_a_queued_error_is_raised_like_a_servers_and_the_chain_moves_on():
    down = QueuedProvider(ModelNotLoaded("no model loaded"), name="down")
    up = QueuedProvider("from the second")
    async with gateway_with(down=down, up=up) as gateway:
        result = await gateway.chat("hi")
    assert (result.text, result.provider) == ("from the second", "queued") and len(down.requests) == 1


async def test_a_request_with_nothing_queued_fails_the_test_with_that_request():
    async with gateway_with(queued=QueuedProvider()) as gateway:
        with pytest.raises(AssertionError, match=r"no answer queued.*'unexpected'"):
            await gateway.chat("unexpected")
