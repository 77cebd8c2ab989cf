"""The LLM error hierarchy. Vendor and HTTP errors are translated into these once, at the transport.

    CtiStudioError (ctistudio.errors)
    └── LLMError
        ├── ProviderError                 a provider answered badly or not at all; carries status and body
        │   ├── ProviderUnavailable       connect error, timeout, dropped stream          (transient)
        │   │   ├── ServerError           HTTP 5xx, e.g. LM Studio's "channel error"      (transient)
        │   │   └── PlatformUnsupported   the engine cannot run on this machine (MLX off Apple Silicon)
        │   ├── RateLimited               HTTP 429/529, with retry_after seconds          (transient)
        │   ├── ModelNotLoaded            "model not found" / "No models loaded"
        │   ├── ContextOverflow           the prompt does not fit the loaded window; carries the numbers
        │   ├── AuthenticationFailed      401/403: missing or wrong key
        │   └── BadRequest                any other 4xx: our request is wrong; never retried
        ├── BadOutput                     the model answered, but not with what the schema asks for
        └── NoProviderAvailable           every provider in the chain failed; carries each failure

Only the *transient* ones are retried by the router; availability failures move on to the next provider in
the fallback chain; ``ContextOverflow`` is re-budgeted once or moves to a provider with a larger window.
"""

from __future__ import annotations

from typing import Any

from ctistudio.errors import CtiStudioError


class LLMError(CtiStudioError):
    """Base class for everything the LLM layer raises."""


class ProviderError(LLMError):
    """A provider failed. ``status_code`` and ``body`` are the raw HTTP facts when there were any."""

    transient = False

    def __init__(
        self,
        message: str,
        *,
        fix: str | None = None,
        provider: str | None = None,
        url: str | None = None,
        status_code: int | None = None,
        body: str | None = None,
    ) -> None:
        super().__init__(message, fix=fix)
        self.provider = provider
        self.url = url
        self.status_code = status_code
        self.body = body


class ProviderUnavailable(ProviderError):
    """The server could not be reached, timed out, or dropped the connection."""

    transient = True


class ServerError(ProviderUnavailable):
    """The server answered with a 5xx (crashed model, overloaded backend)."""


class PlatformUnsupported(ProviderUnavailable):
    """The engine cannot run on this machine at all. Unavailable (the chain moves on), but never transient:
    retrying or cooling down would not change the CPU or the operating system."""

    transient = False


class RateLimited(ProviderError):
    """HTTP 429 (or Anthropic's 529 overloaded); ``retry_after`` is in seconds when the server said."""

    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ModelNotLoaded(ProviderError):
    """The named model is unknown to the server or not loaded."""

    def __init__(self, message: str, *, model: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.model = model


class ContextOverflow(ProviderError):
    """The prompt (plus the room kept for the answer) does not fit the model's loaded context window.

    ``prompt_tokens`` and ``context_length`` are the numbers the server reported (or that we computed
    before sending); either may be ``None`` when the server's message did not include it.
    """

    def __init__(
        self,
        message: str,
        *,
        prompt_tokens: int | None = None,
        context_length: int | None = None,
        model: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.prompt_tokens = prompt_tokens
        self.context_length = context_length
        self.model = model


class AuthenticationFailed(ProviderError):
    """HTTP 401/403: the key is missing, wrong, or lacks permission."""


class BadRequest(ProviderError):
    """Any other 4xx: the request itself is wrong. Never retried."""


class BadOutput(LLMError):
    """The model's answer is not valid for the requested schema, even after one repair attempt."""

    def __init__(self, message: str, *, fix: str | None = None, raw: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.raw = raw


class NoProviderAvailable(LLMError):
    """Every provider in the chain was skipped or failed. ``failures`` maps provider name to the error."""

    def __init__(self, message: str, *, failures: dict[str, Exception] | None = None, fix: str | None = None):
        super().__init__(message, fix=fix)
        self.failures = failures or {}

    @classmethod
    def of(cls, failures: dict[str, Exception]) -> LLMError:
        """What to raise after a chain failed: the one failure as it was, an overflow everywhere as the first
        overflow, else one error naming each provider's failure and each fix."""
        if len(failures) == 1:
            error = next(iter(failures.values()))
            if isinstance(error, LLMError):
                return error
        overflows = [e for e in failures.values() if isinstance(e, ContextOverflow)]
        if failures and len(overflows) == len(failures):
            return overflows[0]
        summary = "; ".join(_labelled(name, getattr(e, "message", str(e))) for name, e in failures.items())
        fixes = {_labelled(name, fix) for name, e in failures.items() if (fix := getattr(e, "fix", None))}
        return cls(
            f"no provider could answer ({summary or 'no provider configured'})",
            failures=failures,
            fix=" | ".join(sorted(fixes)) or None,
        )


def _labelled(name: str, text: str) -> str:
    """``name: text`` unless the text already starts with the provider's name."""
    return text if text.startswith(f"{name}:") or text.startswith(f"{name} ") else f"{name}: {text}"


class Unsupported(LLMError):
    """The provider does not offer this operation (e.g. embeddings on Anthropic)."""
