"""Provider API: status, live models, the connection test (``POST /api/test-lmstudio``) and model loading."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from ctistudio.llm import ModelInfo
from ctistudio.llm.diagnostics import ConnectionReport
from ctistudio.llm.providers.lmstudio import LoadResult
from ctistudio.web import providers_service as service
from ctistudio.web.deps import PROTECTED, CtxDep
from ctistudio.web.settings_service import SettingsUpdate

router = APIRouter(prefix="/api", tags=["providers"], dependencies=PROTECTED)

ProviderName = Annotated[str, Path(max_length=40, pattern=r"^[a-z_]+$")]


class TestRequest(BaseModel):
    """Unsaved values to test with (e.g. the URL typed in the form); omit to test the saved settings."""

    model_config = ConfigDict(extra="forbid")
    settings: SettingsUpdate | None = None  # type: ignore[valid-type]


class LoadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1, max_length=300)
    context_length: int | None = Field(None, ge=512, le=1_048_576)


def _unsaved(body: TestRequest | None) -> dict | None:
    if body is None or body.settings is None:
        return None
    values = body.settings.model_dump(exclude_none=True)
    values.pop("clear", None)
    return {k: v for k, v in values.items() if v != ""}


@router.get("/providers", response_model=service.ProviderList)
async def providers(ctx: CtxDep, probe: bool = Query(True, description="Check each enabled provider (cached).")):
    """Every provider: enabled, place in the ``auto`` chain, URL and health."""
    return await service.list_providers(ctx, probe=probe)


@router.get("/providers/{name}/models", response_model=list[ModelInfo])
async def provider_models(ctx: CtxDep, name: ProviderName):
    """The models the provider serves now, with loaded state and loaded context length."""
    return await service.live_models(ctx, name)


@router.post("/providers/{name}/models", response_model=list[ModelInfo])
async def provider_models_unsaved(ctx: CtxDep, name: ProviderName, body: Annotated[TestRequest, Body()]):
    """Like GET, but against unsaved settings (the server URL typed in the form)."""
    return await service.live_models(ctx, name, _unsaved(body))


@router.post("/providers/{name}/test", response_model=ConnectionReport)
async def test_provider(ctx: CtxDep, name: ProviderName, body: Annotated[TestRequest | None, Body()] = None):
    """The report of ``ctistudio llm test --provider NAME``: ``ok`` and each check with its fix."""
    return await service.test_connection(ctx, name, _unsaved(body))


@router.post("/test-lmstudio", response_model=ConnectionReport)
async def test_lmstudio(ctx: CtxDep, body: Annotated[TestRequest | None, Body()] = None):
    """The seed's endpoint: is LM Studio reachable, the configured models loaded with enough context?"""
    return await service.test_connection(ctx, "lmstudio", _unsaved(body))


@router.post("/providers/lmstudio/load", response_model=LoadResult)
async def load_lmstudio(ctx: CtxDep, body: LoadRequest):
    """Load a model in LM Studio with a context length (reuses a loaded instance that is big enough)."""
    return await service.load_lmstudio_model(ctx, body.model, body.context_length)
