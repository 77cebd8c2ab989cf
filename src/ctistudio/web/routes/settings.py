"""``GET|PUT /api/settings``: the values the UI may change; secrets are write-only ("set"/"not set")."""

from __future__ import annotations

from fastapi import APIRouter

from ctistudio.web import settings_service as service
from ctistudio.web.context import NO_STORE, AppContext
from ctistudio.web.deps import PROTECTED, CtxDep

router = APIRouter(prefix="/api", tags=["settings"], dependencies=PROTECTED)


def current_view(ctx: AppContext) -> service.SettingsView:
    if ctx.store is None:
        saved: dict = {}
        saving = (False, f"saving needs the store: {NO_STORE}")
    else:
        saved = ctx.store.load_settings_overrides()[1]
        saving = (True, f"saved in {ctx.store.safe_url()}; applies to every process without restart")
    return service.view_settings(ctx.settings(), saved, saving)


@router.get("/settings", response_model=service.SettingsView)
async def get_settings(ctx: CtxDep):
    """Every editable setting with its current value and whether the UI overrides env/.env."""
    return current_view(ctx)


@router.put("/settings", response_model=service.SettingsView)
async def put_settings(ctx: CtxDep, update: service.SettingsUpdate):  # type: ignore[valid-type]
    """Save values (validated first; ``clear`` resets fields to env/.env/default). Applies without restart."""
    store = ctx.require_store()
    delta = service.settings_delta(store.load_settings_overrides()[1], update)
    if delta:
        store.save_settings_overrides(delta)
    ctx.settings_changed()
    return current_view(ctx)
