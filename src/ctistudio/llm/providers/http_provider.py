"""The base of every provider that talks to a server over HTTP through the shared transport.

It owns the :class:`~ctistudio.llm.transport.HttpTransport` (connection pooling, host fallback, error
mapping with this provider's fixes), names the server as the provider's endpoint, and closes it. What goes
over the wire is the subclass's: the OpenAI format (:mod:`~ctistudio.llm.providers.openai_compat`), Ollama's
native API (:mod:`~ctistudio.llm.providers.ollama`), Anthropic's Messages API.
"""

from __future__ import annotations

from typing import Any

from ctistudio.llm.provider import Provider
from ctistudio.llm.transport import HttpTransport


class HttpProvider(Provider):
    """A provider whose server is reached at ``base_url`` (and, on connection failures, ``fallback_hosts``)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 600.0,
        fallback_hosts: list[str] | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.transport = HttpTransport(
            base_url,
            provider=self.name,
            api_key=api_key,
            timeout=timeout,
            fallback_hosts=fallback_hosts,
            headers=headers,
            fix_for=self.fix_for,
        )

    @property
    def endpoint(self) -> str:
        return self.transport.candidates[0]

    @property
    def base_url(self) -> str:
        """The base URL that answered last (after host fallback)."""
        return self.transport.base_url

    def fix_for(self, kind: str) -> str | None:
        """How to fix a failure of ``kind`` (connect, timeout, auth, model, context, rate, server)."""
        return {
            "connect": f"Check that the server is running and that its URL ({self.transport.candidates[0]}) is right.",
            "timeout": "The server is slow (long prompt prefill?): raise the timeout or use a smaller model.",
            "auth": "Check the API key.",
            "model": "Check the model name against the server's model list.",
            "context": "Use a model with a larger context window or shorten the input.",
            "rate": "Wait and retry, or lower the number of parallel requests.",
            "server": "The server failed while answering; check its log.",
        }.get(kind)

    async def aclose(self) -> None:
        await self.transport.aclose()
