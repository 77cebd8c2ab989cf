"""The app's routers, in the order they are included."""

from ctistudio.web.routes import (
    api_docs,
    articles,
    auth,
    benchmarks,
    chat,
    health,
    pages,
    providers,
    queue,
    runs,
    settings,
    sources,
)

ROUTERS = [
    health.router,
    api_docs.router,
    auth.router,
    providers.router,
    settings.router,
    articles.api,
    sources.api,
    sources.pages,
    runs.api,
    queue.api,
    chat.api,
    benchmarks.api,
    pages.router,
    chat.pages,
    benchmarks.pages,
    runs.pages,
    queue.pages,
    articles.pages,
]
