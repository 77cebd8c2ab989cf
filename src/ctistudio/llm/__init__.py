"""ctistudio's LLM layer, usable on its own: ``from ctistudio.llm import Gateway``."""

from ctistudio.llm.errors import (
    AuthenticationFailed,
    BadOutput,
    BadRequest,
    ContextOverflow,
    LLMError,
    ModelNotLoaded,
    NoProviderAvailable,
    PlatformUnsupported,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    ServerError,
    Unsupported,
)
from ctistudio.llm.gateway import Gateway
from ctistudio.llm.provider import Provider
from ctistudio.llm.router import Router, RouterPolicy
from ctistudio.llm.types import (
    ChatRequest,
    ChatResult,
    EmbeddingResult,
    Health,
    Message,
    ModelInfo,
    StreamDelta,
    Task,
    Timings,
    Usage,
)

__all__ = [
    "AuthenticationFailed",
    "BadOutput",
    "BadRequest",
    "ChatRequest",
    "ChatResult",
    "ContextOverflow",
    "EmbeddingResult",
    "Gateway",
    "Health",
    "LLMError",
    "Message",
    "ModelInfo",
    "ModelNotLoaded",
    "NoProviderAvailable",
    "PlatformUnsupported",
    "Provider",
    "ProviderError",
    "ProviderUnavailable",
    "RateLimited",
    "Router",
    "RouterPolicy",
    "ServerError",
    "StreamDelta",
    "Task",
    "Timings",
    "Unsupported",
    "Usage",
]
