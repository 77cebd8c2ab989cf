"""Fit a request into a model's loaded context window before it is sent.

Only messages marked ``truncatable`` (the article, never the rubric or the question) are cut, at a
sentence boundary, with a visible marker saying how much was removed; room is kept for the answer. When
nothing can be cut, :class:`ContextOverflow` is raised with the numbers and the exact fix.

:class:`ContextBudget` is the router's memory for this: each model's loaded window (cached), how far the
server's token counts exceed our estimate (learned on an overflow), and the one re-budget after an overflow
the server reports — with the server's numbers, never a blind retry.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ctistudio.llm.errors import ContextOverflow, ProviderError
from ctistudio.llm.provider import TOKENS_PER_MESSAGE_ESTIMATE, Provider
from ctistudio.llm.types import ChatRequest, ContextFit, Message

log = logging.getLogger(__name__)

TokenCounter = Callable[[str], Awaitable[int]]

# Context each task needs: (minimum, recommended) tokens. Ranking sends the full rubric plus the article.
# `ctistudio llm test` fails below the minimum and warns below the recommendation; every fix we print names
# a window of at least the minimum, so following it makes the test pass.
TASK_CONTEXT_NEEDS: dict[str, tuple[int, int]] = {
    "rank": (8192, 16384),
    "extract": (8192, 16384),
    "sigma": (8192, 16384),
    "chat": (4096, 8192),
    "embed": (2048, 2048),
}

# Estimates can be a little off even with a server tokenizer (chat templates add tokens): keep a margin.
SAFETY_TOKENS = 32
SAFETY_FRACTION = 0.02
# Where a cut may end, best first: paragraph, sentence, line, clause, word.
_BOUNDARIES = ("\n\n", ".\n", ". ", "? ", "! ", "\n", "; ", ", ", " ")


def truncation_marker(removed_chars: int, context_length: int) -> str:
    return (
        f"\n\n[… {removed_chars:,} characters of this text were cut to fit the model's "
        f"{context_length:,}-token context window …]"
    )


def cut_at_boundary(text: str, keep_chars: int) -> str:
    """``text`` shortened to at most ``keep_chars``, ending at the last sentence (or word) boundary."""
    if keep_chars >= len(text):
        return text
    if keep_chars <= 0:
        return ""
    window = text[:keep_chars]
    floor = int(keep_chars * 0.8)  # don't throw away more than a fifth looking for a boundary
    for boundary in _BOUNDARIES:
        index = window.rfind(boundary)
        if index >= floor:
            return window[: index + len(boundary.rstrip())].rstrip()
    return window.rstrip()


def window_for(needed_tokens: int, task: str | None = None) -> int:
    """The window to ask for: a power of two ≥ ``needed_tokens`` and ≥ the task's minimum."""
    minimum = TASK_CONTEXT_NEEDS.get(str(task), (4096, 4096))[0] if task else 4096
    size = 2048
    while size < max(needed_tokens, minimum):
        size *= 2
    return size


async def fit_request(
    request: ChatRequest,
    *,
    context_length: int | None,
    count: TokenCounter,
    provider: Provider,
) -> tuple[ChatRequest, ContextFit]:
    """Return a request that fits ``context_length`` (unchanged when it already does or when unknown)."""
    if not context_length:
        return request, ContextFit(reserved_for_output=request.max_tokens)
    reserve = min(request.max_tokens, context_length // 2)
    margin = SAFETY_TOKENS + int(context_length * SAFETY_FRACTION)
    budget = context_length - reserve - margin
    overhead = TOKENS_PER_MESSAGE_ESTIMATE * len(request.messages)
    counts = [await count(m.content) for m in request.messages]
    total = sum(counts) + overhead
    if total <= budget:
        fitted = request.model_copy(update={"max_tokens": reserve})
        return fitted, ContextFit(context_length=context_length, prompt_tokens=total, reserved_for_output=reserve)

    fixed = sum(c for c, m in zip(counts, request.messages, strict=True) if not m.truncatable) + overhead
    room = budget - fixed
    cuttable = [i for i, m in enumerate(request.messages) if m.truncatable]
    if not cuttable or room <= 64:
        raise ContextOverflow(
            f"the prompt needs ~{total:,} tokens plus {reserve:,} for the answer, but {request.model or 'the model'} "
            f"is loaded with a {context_length:,}-token context window"
            + ("" if cuttable else " and no part of the prompt may be shortened"),
            prompt_tokens=total,
            context_length=context_length,
            model=request.model,
            provider=provider.name,
            fix=provider.context_fix(request.model or "MODEL", window_for(total + reserve + margin, request.task)),
        )

    messages = list(request.messages)
    removed = 0
    # Water-filling: small truncatable parts stay whole, the rest share what is left equally.
    order = sorted(cuttable, key=lambda i: counts[i])
    left = room
    for position, index in enumerate(order):
        share = left // (len(order) - position)
        if counts[index] <= share:
            left -= counts[index]
            continue
        text = messages[index].content
        shortened, candidate = await _shrink(text, counts[index], share, context_length, count)
        removed += len(text) - len(shortened)
        messages[index] = Message(role=messages[index].role, content=candidate, truncatable=True)
        left -= share
    fitted = request.model_copy(update={"messages": messages, "max_tokens": reserve})
    new_total = sum([await count(m.content) for m in messages]) + overhead
    return fitted, ContextFit(
        context_length=context_length, prompt_tokens=new_total, reserved_for_output=reserve, truncated_chars=removed
    )


async def _shrink(text: str, tokens: int, target: int, window: int, count: TokenCounter) -> tuple[str, str]:
    """``(kept, kept + marker)``: the longest boundary-cut prefix of ``text`` that fits ``target`` tokens."""
    chars_per_token = len(text) / max(tokens, 1)
    keep = int((target - await count(truncation_marker(len(text), window))) * chars_per_token)
    for _ in range(16):  # shrink until the counter agrees (exact counters disagree with the ratio a little)
        if keep <= 0:
            break
        kept = cut_at_boundary(text, keep)
        candidate = kept + truncation_marker(len(text) - len(kept), window)
        if await count(candidate) <= target:
            return kept, candidate
        keep = int(keep * 0.85)
    return "", truncation_marker(len(text), window).lstrip()


class ContextBudget:
    """Loaded windows (cached ``ttl`` seconds) and learned token scales per (endpoint, model)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = max(ttl, 1.0)
        # (endpoint, model) -> (expires at, loaded window); the window can change when a model is reloaded
        self._windows: dict[tuple[str, str], tuple[float, int | None]] = {}
        # (endpoint, model) -> factor by which the server's token counts exceed our estimate
        self._scales: dict[tuple[str, str], float] = {}

    async def window(self, provider: Provider, model: str) -> int | None:
        """The model's loaded window (one model-list call per ``ttl``); ``None`` when unknown."""
        key = (provider.endpoint, model)
        cached = self._windows.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            window = await provider.context_length(model)
        except ProviderError as error:
            log.debug("%s: context length of %s unknown (%s)", provider.name, model, error)
            return None
        self._windows[key] = (now + self.ttl, window)
        return window

    async def fit(
        self, provider: Provider, request: ChatRequest, window: int | None, scale: float | None = None
    ) -> tuple[ChatRequest, ContextFit]:
        """``request`` fitted to ``window``, counting with the provider's tokenizer times the learned scale."""
        model = request.model or ""
        factor = scale if scale is not None else self._scales.get((provider.endpoint, model), 1.0)
        return await fit_request(
            request, context_length=window, count=ScaledCounter(provider, model, factor), provider=provider
        )

    async def refit(
        self, provider: Provider, request: ChatRequest, sent: ChatRequest, overflow: ContextOverflow, known: int | None
    ) -> tuple[ChatRequest, ContextFit]:
        """Fit ``request`` again with the window and token count the server reported for ``sent``.

        The overflow first gets the model and the exact fix. When the server counted more prompt tokens than
        we estimated, our counts are scaled up by that factor (remembered for the next calls). Raises
        ``overflow`` when the new fit would send the same request again: that would be a blind retry.
        """
        _explain(provider, sent, overflow)
        model = request.model or ""
        key = (provider.endpoint, model)
        count = ScaledCounter(provider, model, 1.0)
        messages = sent.messages
        estimate = sum([await count(m.content) for m in messages]) + TOKENS_PER_MESSAGE_ESTIMATE * len(messages)
        scale = self._scales.get(key, 1.0)
        if overflow.prompt_tokens and estimate:
            scale = self._scales[key] = max(scale, overflow.prompt_tokens / estimate)
        window = overflow.context_length
        if not window:
            self._windows.pop(key, None)
            fresh = await self.window(provider, model)
            window = fresh if fresh and fresh != known else None
        if not window:
            # The server gave no numbers: assume a window a quarter smaller than what we sent.
            window = int((overflow.prompt_tokens or estimate * scale) * 0.75) + sent.max_tokens
        self._windows[key] = (time.monotonic() + self.ttl, window)
        log.info("%s: server reported overflow; re-fitting %s to a %d-token window", provider.name, model, window)
        try:
            fitted, fit = await self.fit(provider, request, window, scale)
        except ContextOverflow:
            raise overflow from None  # nothing can be cut: the server's own numbers tell the story
        if fitted.messages == sent.messages and fitted.max_tokens >= sent.max_tokens:
            raise overflow
        return fitted, fit


@dataclass(frozen=True)
class ScaledCounter:
    """Counts tokens with the provider's tokenizer (or estimate) for ``model``, times ``factor``."""

    provider: Provider
    model: str
    factor: float

    async def __call__(self, text: str) -> int:
        tokens = await self.provider.count_tokens(text, self.model)
        return tokens if self.factor == 1.0 else math.ceil(tokens * self.factor)


def _explain(provider: Provider, sent: ChatRequest, overflow: ContextOverflow) -> None:
    """Give a server-reported overflow the model and the exact command that fixes it."""
    overflow.model = overflow.model or sent.model
    overflow.provider = overflow.provider or provider.name
    if overflow.prompt_tokens and sent.model:
        overflow.fix = provider.context_fix(sent.model, window_for(overflow.prompt_tokens + sent.max_tokens, sent.task))
