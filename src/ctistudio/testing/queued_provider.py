"""An in-process provider that answers from a queue, for tests of the services that call the gateway.

A service-level test (ranking, extraction, chat) cares about what the service does with an answer, not
about the wire: queue the answers, run the service, look at what it made of them and at the requests it
sent. The HTTP doubles (:mod:`ctistudio.testing.lmstudio_double` …) stay for the protocol tests.

    fake = QueuedProvider({"score": 8, "reasons": [], "evidence": [1]})
    gateway = Gateway(settings, providers={"fake": fake})
    outcome = await rank_article(gateway, article)
    assert fake.requests[0].task == "rank"

An answer is a text, a JSON value (sent as its JSON text, as a server answering a schema would) or an
exception (raised, as a failing server's error would be). A request with nothing queued fails the test
with the request it got, never with an invented answer.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from ctistudio.llm.provider import Provider, estimate_tokens
from ctistudio.llm.types import ChatRequest, ChatResult, Usage

Answer = str | dict[str, Any] | list[Any] | BaseException


class QueuedProvider(Provider):
    """Answers requests, in order, with the answers queued; keeps every request in :attr:`requests`."""

    name = "queued"

    def __init__(self, *answers: Answer, model: str = "queued-model", **kwargs: Any) -> None:
        kwargs.setdefault("default_model", model)
        super().__init__(**kwargs)
        self.requests: list[ChatRequest] = []
        self._answers: deque[Answer] = deque(answers)

    def queue(self, *answers: Answer) -> QueuedProvider:
        """Add answers after those already queued."""
        self._answers.extend(answers)
        return self

    @property
    def pending(self) -> int:
        """Answers queued and not given yet."""
        return len(self._answers)

    async def complete(self, request: ChatRequest) -> ChatResult:
        self.requests.append(request)
        if not self._answers:
            last = request.messages[-1].content[:200] if request.messages else ""
            raise AssertionError(
                f"QueuedProvider: request {len(self.requests)} ({request.task}) found no answer queued; "
                f"its last message: {last!r}"
            )
        answer = self._answers.popleft()
        if isinstance(answer, BaseException):
            raise answer
        text = answer if isinstance(answer, str) else json.dumps(answer)
        prompt = sum(estimate_tokens(m.content) for m in request.messages)
        return ChatResult(
            text=text,
            finish_reason="stop",
            usage=Usage(prompt_tokens=prompt, completion_tokens=estimate_tokens(text)),
            provider=self.name,
            model=request.model or self.default_model or "",
        )
