"""Builders for the providers that need no optional engine: settings in, provider out."""

from __future__ import annotations

from collections.abc import Callable

from ctistudio.config import Settings, env_name
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
        timeout=s.for_lmstudio("timeout"),
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
        timeout=s.timeout,
        default_model=s.openai_model,
        embedding_model=s.openai_embedding_model,
        max_in_flight=s.max_in_flight,
    )


def build_anthropic(s: Settings) -> AnthropicProvider:
    return AnthropicProvider(
        s.anthropic_base_url,
        api_key=s.secret("anthropic_api_key"),
        timeout=s.timeout,
        default_model=s.anthropic_model,
        max_in_flight=s.max_in_flight,
    )


def openai_compatible(
    name: str, url_setting: str, model_setting: str, key_setting: str | None
) -> Callable[..., OpenAICompatibleProvider]:
    """The builder of an OpenAI-compatible server provider called ``name`` whose URL(s), model and key are
    the settings named (the ``openai_compat`` provider, or a second such server: docs/gateway.md)."""

    def build(s: Settings, *, several_hosts: bool = False) -> OpenAICompatibleProvider:
        url = getattr(s, url_setting)
        if not url:
            raise ConfigurationError(
                f"the {name} provider needs a URL",
                fix=f"Set {env_name(url_setting)} (e.g. http://localhost:8000/v1).",
            )
        model = getattr(s, model_setting)
        return OpenAICompatibleProvider(
            url,
            name=name,
            api_key=s.secret(key_setting) if key_setting else None,
            timeout=s.timeout,
            default_model=model,
            embedding_model=model,
            max_in_flight=s.max_in_flight,
            context_overrides=s.context_lengths,
        )

    return build
