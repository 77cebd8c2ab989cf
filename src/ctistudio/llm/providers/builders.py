"""Builders for the providers that need no optional engine: settings in, provider out."""

from __future__ import annotations

from ctistudio.config import Settings
from ctistudio.errors import ConfigurationError
from ctistudio.llm.providers.anthropic import AnthropicProvider
from ctistudio.llm.providers.lmstudio import LMStudioProvider
from ctistudio.llm.providers.openai import OpenAIProvider
from ctistudio.llm.providers.openai_compat import OpenAICompatibleProvider
from ctistudio.llm.types import Task


def build_lmstudio(s: Settings, *, several_hosts: bool = False) -> LMStudioProvider:
    # one host of several: a connection failure goes to the sibling hosts, not to localhost
    fallback: dict[str, list[str]] = {"fallback_hosts": []} if several_hosts else {}
    return LMStudioProvider(
        s.lmstudio_api_url,
        **fallback,
        api_key=s.secret("lmstudio_api_key"),
        timeout=s.lmstudio_timeout,
        embedding_url=s.lmstudio_embedding_url,
        models_by_task={
            task: s.model_for_task(task.value) for task in (Task.RANK, Task.EXTRACT, Task.SIGMA, Task.CHAT)
        },
        default_model=s.lmstudio_model,
        embedding_model=s.lmstudio_embedding_model,
        max_in_flight=s.max_in_flight,
        context_overrides=s.context_lengths,
        max_context=s.lmstudio_max_context,
    )


def build_openai(s: Settings) -> OpenAIProvider:
    return OpenAIProvider(
        s.openai_base_url,
        api_key=s.secret("openai_api_key"),
        timeout=s.lmstudio_timeout,
        default_model=s.openai_model,
        embedding_model=s.openai_embedding_model,
        max_in_flight=s.max_in_flight,
    )


def build_anthropic(s: Settings) -> AnthropicProvider:
    return AnthropicProvider(
        s.anthropic_base_url,
        api_key=s.secret("anthropic_api_key"),
        timeout=s.lmstudio_timeout,
        default_model=s.anthropic_model,
        max_in_flight=s.max_in_flight,
    )


def build_openai_compat(s: Settings, *, several_hosts: bool = False) -> OpenAICompatibleProvider:
    if not s.openai_compat_url:
        raise ConfigurationError(
            "the openai_compat provider needs a URL",
            fix="Set CTISTUDIO_OPENAI_COMPAT_URL (e.g. http://localhost:8000/v1).",
        )
    return OpenAICompatibleProvider(
        s.openai_compat_url,
        api_key=s.secret("openai_compat_api_key"),
        timeout=s.lmstudio_timeout,
        default_model=s.openai_compat_model,
        embedding_model=s.openai_compat_model,
        max_in_flight=s.max_in_flight,
        context_overrides=s.context_lengths,
    )
