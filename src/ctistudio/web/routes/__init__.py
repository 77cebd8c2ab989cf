"""The app's routers, in the order they are included."""

from ctistudio.web.routes import articles, auth, health, pages, providers, settings, sources

ROUTERS = [
    health.router,
    auth.router,
    providers.router,
    settings.router,
    articles.api,
    sources.api,
    sources.pages,
    pages.router,
    articles.pages,
]
