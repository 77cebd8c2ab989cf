"""The app's routers, in the order they are included."""

from ctistudio.web.routes import articles, auth, chat, health, pages, providers, queue, runs, settings, sources

ROUTERS = [
    health.router,
    auth.router,
    providers.router,
    settings.router,
    articles.api,
    sources.api,
    sources.pages,
    runs.api,
    queue.api,
    chat.api,
    pages.router,
    chat.pages,
    runs.pages,
    queue.pages,
    articles.pages,
]
