"""The web app: FastAPI routes over the services, Jinja2 pages with HTMX, and the REST API.

Build it with :func:`ctistudio.web.app.create_app`; ``ctistudio serve`` runs it with uvicorn.
"""
