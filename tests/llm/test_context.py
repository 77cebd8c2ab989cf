"""Context fitting: only the truncatable part is cut, at a sentence boundary, with a marker, leaving room."""

from __future__ import annotations

import pytest

from ctistudio.llm import ChatRequest, ContextOverflow, Message
from ctistudio.llm.context import cut_at_boundary, fit_request
from ctistudio.llm.provider import estimate_tokens
from ctistudio.llm.providers.lmstudio import LMStudioProvider

LMSTUDIO = LMStudioProvider("http://127.0.0.1:9/v1")  # only its name and its context fix are used


async def count(text: str) -> int:
    return estimate_tokens(text)


def article(sentences: int) -> str:
    return " ".join(f"Sentence number {i} says that powershell.exe -enc was used." for i in range(sentences))


def test_cut_prefers_sentence_boundaries():
    text = "First sentence here. Second sentence here. Third one is long and goes on"
    cut = cut_at_boundary(text, 50)
    assert cut == "First sentence here. Second sentence here."
    assert cut_at_boundary(text, 1000) == text
    assert cut_at_boundary("Question? Answer! More text follows here", 20) == "Question? Answer!"
    # a run without any boundary near the end (a hash, base64) is cut where it must be
    assert cut_at_boundary("a " + "f" * 40, 20) == "a " + "f" * 18


async def test_fits_unchanged_and_keeps_room_for_the_answer():
    request = ChatRequest(messages=[Message(role="user", content="short question")], max_tokens=256)
    fitted, fit = await fit_request(request, context_length=4096, count=count, provider=LMSTUDIO)
    assert fitted.messages == request.messages
    assert fit.truncated_chars == 0 and fit.reserved_for_output == 256 and fit.context_length == 4096


async def test_unknown_window_sends_as_is():
    request = ChatRequest(messages=[Message(role="user", content=article(2000), truncatable=True)])
    fitted, fit = await fit_request(request, context_length=None, count=count, provider=LMSTUDIO)
    assert fitted is request and fit.context_length is None


async def test_truncates_only_the_article_at_a_sentence_with_a_visible_marker():
    rubric = "You score articles. " * 50
    question = "Score this article from 1 to 10."
    body = article(600)
    request = ChatRequest(
        messages=[
            Message(role="system", content=rubric),
            Message(role="user", content=body, truncatable=True),
            Message(role="user", content=question),
        ],
        max_tokens=512,
    )
    fitted, fit = await fit_request(request, context_length=4096, count=count, provider=LMSTUDIO)
    system, cut, last = fitted.messages
    assert system.content == rubric and last.content == question  # fixed parts untouched
    kept, marker = cut.content.split("\n\n[…", 1)
    assert body.startswith(kept) and kept.endswith("was used.")  # ends at a sentence boundary
    assert f"{len(body) - len(kept):,} characters of this text were cut" in marker
    assert "4,096-token context window" in marker
    assert fit.truncated_chars == len(body) - len(kept) > 0
    # room for the answer: prompt + reserved output fits the window
    total = sum([await count(m.content) for m in fitted.messages]) + 8 * 3
    assert total + fitted.max_tokens <= 4096
    assert fitted.max_tokens == 512 and fit.reserved_for_output == 512
    assert fit.prompt_tokens == total


async def test_two_articles_share_the_room_and_a_small_one_stays_whole():
    small = "A short note about rundll32. It matters."
    big = article(800)
    request = ChatRequest(
        messages=[
            Message(role="user", content=small, truncatable=True),
            Message(role="user", content=big, truncatable=True),
        ],
        max_tokens=256,
    )
    fitted, _ = await fit_request(request, context_length=4096, count=count, provider=LMSTUDIO)
    assert fitted.messages[0].content == small
    assert "characters of this text were cut" in fitted.messages[1].content


async def test_max_tokens_larger_than_half_the_window_is_capped():
    request = ChatRequest(messages=[Message(role="user", content="hi")], max_tokens=100_000)
    fitted, fit = await fit_request(request, context_length=8192, count=count, provider=LMSTUDIO)
    assert fitted.max_tokens == 4096 == fit.reserved_for_output


async def test_nothing_truncatable_raises_overflow_with_the_exact_fix():
    request = ChatRequest(messages=[Message(role="user", content=article(600))], model="qwen/qwen3-4b-2507")
    with pytest.raises(ContextOverflow) as info:
        await fit_request(request, context_length=4096, count=count, provider=LMSTUDIO)
    error = info.value
    assert error.context_length == 4096 and error.prompt_tokens and error.prompt_tokens > 4096
    assert "ctistudio llm load qwen/qwen3-4b-2507 --context-length 16384" in (error.fix or "")
    assert "no part of the prompt may be shortened" in error.message
