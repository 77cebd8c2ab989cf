"""Provider status, live model lists, connection tests and model loading for the Settings page and API.

A connection test may carry unsaved settings (the values typed in the form): they are validated and
overlaid on the current settings for that one test only, so a URL can be tried before it is saved.
A stored key is never sent to a URL it was not saved for: when the unsaved values move a provider's URL,
that provider's stored key is left out unless the same request enters a key (see :data:`KEY_URLS`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ctistudio.config import Settings, env_name, load_settings
from ctistudio.errors import InvalidInput
from ctistudio.llm import Gateway, ModelInfo
from ctistudio.llm.diagnostics import ConnectionReport, connection_report
from ctistudio.llm.providers import SPECS, auto_chain, provider_names
from ctistudio.llm.providers.builders import build_lmstudio
from ctistudio.llm.providers.lmstudio import LoadResult
from ctistudio.web.context import AppContext

# Each secret and the URLs it is sent to: a test against another URL uses only a key typed in the request.
KEY_URLS: dict[str, tuple[str, ...]] = {
    spec.key_setting: tuple(url for url in (spec.url_setting, *spec.key_urls) if url)
    for spec in SPECS
    if spec.key_setting
}


class ProviderStatus(BaseModel):
    name: str
    enabled: bool
    chain_position: int | None  # 1-based place in the ``auto`` chain, None when not in it
    url: str | None
    ok: bool | None  # None: not probed (provider not enabled)
    detail: str
    latency_s: float | None = None


class ProviderList(BaseModel):
    llm_provider: str
    chain: list[str]
    providers: list[ProviderStatus]


def check_provider_name(name: str) -> str:
    if name not in provider_names():
        raise InvalidInput(f"unknown provider {name!r}", fix=f"Use one of: {', '.join(provider_names())}.")
    return name


async def list_providers(ctx: AppContext, *, probe: bool = True) -> ProviderList:
    """Every known provider with its enabled state, place in the chain and (cached) health."""
    settings = ctx.settings()
    gateway = ctx.gateway()
    chain = auto_chain(settings)
    out = []
    for spec in SPECS:
        name = spec.name
        enabled = name in chain
        status = ProviderStatus(
            name=name,
            enabled=enabled,
            chain_position=chain.index(name) + 1 if enabled else None,
            url=spec.url(settings),
            ok=None,
            detail="not enabled",
        )
        if enabled and probe:
            health = await ctx.health.get(gateway, name)
            status.ok, status.detail, status.latency_s = health.ok, health.detail, health.latency_s
        out.append(status)
    return ProviderList(llm_provider=settings.llm_provider, chain=chain, providers=out)


def settings_with(base: Settings, unsaved: dict[str, Any] | None) -> tuple[Settings, list[str]]:
    """``base`` with ``unsaved`` values laid over it (validated like a saved change would be), and the
    stored keys left out because the unsaved values send them to another URL (:data:`KEY_URLS`)."""
    if not unsaved:
        return base, []
    values = {name: getattr(base, name) for name in type(base).model_fields}
    for name, value in values.items():
        if hasattr(value, "get_secret_value"):
            values[name] = value.get_secret_value()
    values.update({k: v for k, v in unsaved.items() if v is not None})
    merged = load_settings(values, env_file=None)
    withheld = [
        key
        for key, urls in KEY_URLS.items()
        if unsaved.get(key) is None
        and base.secret(key)
        and any(getattr(merged, url) != getattr(base, url) for url in urls)
    ]
    if not withheld:
        return merged, []
    return load_settings({**values, **dict.fromkeys(withheld)}, env_file=None), withheld


async def test_connection(ctx: AppContext, name: str, unsaved: dict[str, Any] | None = None) -> ConnectionReport:
    """The ``ctistudio llm test`` report for ``name``, with the saved settings or the unsaved ones given."""
    check_provider_name(name)
    settings, withheld = settings_with(ctx.settings(), unsaved)
    async with Gateway(settings) as gateway:  # a fresh gateway: no cooldown or cache from earlier failures
        report = await connection_report(gateway.provider(name))
    for key in withheld:
        report.add(
            "stored key withheld",
            True,
            f"the saved {env_name(key)} was not sent: it is only sent to the URL it was saved for",
            level="info",
        )
    ctx.health.clear()
    return report


async def live_models(ctx: AppContext, name: str, unsaved: dict[str, Any] | None = None) -> list[ModelInfo]:
    """The models ``name`` serves now, with loaded context lengths where the server tells them."""
    check_provider_name(name)
    settings, _ = settings_with(ctx.settings(), unsaved)
    async with Gateway(settings) as gateway:
        return await gateway.provider(name).models()


async def load_lmstudio_model(ctx: AppContext, model: str, context_length: int | None) -> LoadResult:
    """Load ``model`` in LM Studio with ``context_length`` tokens (reusing an instance that is big enough)."""
    provider = build_lmstudio(ctx.settings())
    try:
        return await provider.load(model, context_length)
    finally:
        await provider.aclose()
        ctx.health.clear()
