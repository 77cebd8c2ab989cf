"""The app's routers, in the order they are included."""

from ctistudio.web.routes import auth, health, pages, providers, settings

ROUTERS = [health.router, auth.router, providers.router, settings.router, pages.router]
