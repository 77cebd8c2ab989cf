"""The FastAPI app factory: ``create_app(source)`` builds a fresh app around a settings source.

Nothing is built at import time: ``ctistudio serve`` and the tests each call :func:`create_app` with the
settings they want (the source re-reads UI-saved overrides, so a saved change applies without restart).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from ctistudio import __version__
from ctistudio.config import Settings, SettingsSource, load_settings
from ctistudio.web.bench_views import BenchJobs
from ctistudio.web.context import AppContext
from ctistudio.web.errors import install_error_handlers
from ctistudio.web.middleware import WebMiddleware
from ctistudio.web.routes import ROUTERS
from ctistudio.web.security import split_hosts
from ctistudio.web.templating import install_filters

HERE = Path(__file__).resolve().parent

NAV = [
    ("/", "Dashboard"),
    ("/articles", "Articles"),
    ("/sources", "Sources"),
    ("/runs", "Runs"),
    ("/queue", "Sigma queue"),
    ("/coverage", "Coverage"),
    ("/chat", "Chat"),
    ("/benchmarks", "Benchmarks"),
    ("/settings", "Settings"),
]


def _settings_values(settings: Settings) -> dict[str, Any]:
    """Every field of ``settings`` as plain values (secrets unwrapped), to overlay like saved overrides."""
    out: dict[str, Any] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        out[name] = value.get_secret_value() if hasattr(value, "get_secret_value") else value
    return out


def open_store(settings: Settings) -> Any:
    """The store for ``settings`` (opened and migrated), or ``None`` when this build has no store."""
    try:
        from ctistudio.store import Store
    except ImportError:
        return None
    return Store(settings)


def create_app(
    settings: Settings | None = None,
    *,
    store: Any = None,
    env_file: str | Path | None = ".env",
    bind_host: str | None = None,
) -> FastAPI:
    """Build the web app.

    ``settings`` (default: env + ``.env``) are the base; values saved in the Settings page are laid over
    them on every request (re-read when another process saved new ones). ``store`` defaults to the
    store of ``settings``' database. ``bind_host`` (what ``serve --host`` binds) is one of the Host names
    the app answers to (see :class:`ctistudio.web.security.HostPolicy`).
    """
    base = settings or load_settings(env_file=env_file)
    store = store if store is not None else open_store(base)
    explicit = _settings_values(settings) if settings is not None else {}

    def overrides() -> tuple[Any, dict[str, Any]]:
        version, saved = store.load_settings_overrides() if store is not None else (None, {})
        return version, {**explicit, **saved}

    ctx = AppContext(SettingsSource(overrides, env_file=env_file), store=store, bind_host=bind_host)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.bench_jobs.aclose()
        await ctx.aclose()
        if store is not None:
            store.dispose()

    app = FastAPI(
        title="ctistudio",
        version=__version__,
        description="Local-first CTI workbench: articles, pipeline runs, Sigma review queue, RAG chat, settings.",
        lifespan=lifespan,
        docs_url=None,  # our own /docs serves the vendored Swagger UI (routes/api_docs.py)
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.bench_jobs = BenchJobs()
    templates = Jinja2Templates(directory=str(HERE / "templates"), context_processors=[_page_globals])
    install_filters(templates.env)
    app.state.templates = templates
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(WebMiddleware, ctx=ctx)
    proxies = split_hosts(base.trusted_proxies)
    if proxies:  # outermost: the scheme and client address the rest of the app sees are the forwarded ones
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    return app


def _page_globals(request: Request) -> dict[str, Any]:
    ctx: AppContext = request.app.state.ctx
    session = request.state.session
    return {
        "nav": NAV,
        "version": __version__,
        "csrf_token": session.csrf,
        "auth_enabled": ctx.auth.enabled,
        "user": session.user if session.user and ctx.sessions.valid(session) else None,
        "current_path": request.url.path,
    }
